"""Jinja2 templates for config.pbtxt and python-backend model.py, loaded with importlib.resources."""
