"""The line locator: field paths of a parsed config.pbtxt -> the line they are written on."""

from __future__ import annotations

from generator.validation.locator import Key, Locator

TEXT = """# a comment with { braces and "quotes"
name: "m"  # trailing comment
max_batch_size: 8
input [
  {
    name: "a # not a comment {"
    dims: [ 1,
            2 ]
  },
  {
    name: 'b'
    dims: [ 3 ]
  }
]
input { name: "c" dims: 4 dims: 5 }
parameters {
  key: "first"
  value { string_value: "x" }
}
parameters: {
  key: "second"
  value: { string_value: "multi" "part" }
}
model_warmup [ { name: "w" inputs < key: "a" value < dims: [ 1 ] > > } ]
"""


def test_scalars_lists_and_repeated_messages() -> None:
    at = Locator(TEXT).line
    assert at(("name",)) == 2
    assert at(("max_batch_size",)) == 3
    assert at(("input", 0)) == 5 and at(("input", 0, "name")) == 6
    assert at(("input", 0, "dims", 1)) == 8
    assert at(("input", 1, "name")) == 11 and at(("input", 1, "dims")) == 12
    assert at(("input", 2, "dims", 1)) == 15  # a third input written outside the list


def test_map_entries_by_key() -> None:
    at = Locator(TEXT).line
    assert at(("parameters", Key("first"))) == 16
    assert at(("parameters", Key("second"), "value")) == 22
    assert at(("model_warmup", 0, "inputs", Key("a"), "value", "dims")) == 24


def test_missing_paths_fall_back_to_the_nearest_parent() -> None:
    at = Locator(TEXT).line
    assert at(("input", 1, "reshape", "shape")) == 10  # not written: the input itself
    assert at(("parameters", Key("absent"))) == 16  # unknown key: the field's first entry
    assert at(("dynamic_batching", "preferred_batch_size", 0)) == 1
