"""text_tokens: language identification of short word sequences from int64 character ids.

Input ``tokens`` int64 [batch, 32]: the characters of three space-separated words of one language
(0 = padding, 1 = unknown character, 2.. = the characters in ``vocab.txt``, line i+2 = id i+2).
The model: Gather embedding + learned positions, a Conv1d stem (k=3, ReLU), two pre-LN transformer
encoder layers with MatMul attention (vit_tiny's layers: LayerNormalization, Softmax, GELU), mean
pooling, Linear -> ``logits`` [batch, 10] over the languages in ``labels.txt``.

Data: real word lists, the 30k most frequent words of each language (en fr de es it nl pt sv pl tr) shipped in the ``wordfreq``
package (``wordfreq.top_n_list``), alphabetic words of 2+ letters. Each language's vocabulary is
split 80/20 with a fixed seed: training and calibration phrases use the 80 %, evaluation phrases
only the held-out 20 % (words never seen in training). Words shared by several languages' lists
(names, loan words) make part of the task ambiguous, hence a ceiling below 100 %.

    nice -n 10 /work/zooenv/bin/python benchmarks/zoo/train_text_tokens.py [--epochs 4] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import common
from train_vit_tiny import EncoderLayer

HERE = Path(__file__).resolve().parent / "text_tokens"
LANGUAGES = ["en", "fr", "de", "es", "it", "nl", "pt", "sv", "pl", "tr"]
LENGTH = 32
WORDS_PER_SAMPLE = 3


def word_lists(seed: int) -> tuple[list[list[str]], list[list[str]]]:
    import wordfreq

    rng = np.random.default_rng(seed)
    train, held = [], []
    for lang in LANGUAGES:
        words = [w for w in wordfreq.top_n_list(lang, 30000) if w.isalpha() and len(w) >= 2]
        order = rng.permutation(len(words))
        cut = int(0.8 * len(words))
        train.append([words[i] for i in order[:cut]])
        held.append([words[i] for i in order[cut:]])
    return train, held


def phrases(lists: list[list[str]], count: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    labels = rng.integers(0, len(lists), size=count)
    texts = []
    for lang in labels:
        words = lists[lang]
        texts.append(" ".join(words[i] for i in rng.integers(0, len(words), size=WORDS_PER_SAMPLE)))
    return texts, labels.astype(np.int64)


def encode(texts: list[str], vocab: dict[str, int]) -> np.ndarray:
    out = np.zeros((len(texts), LENGTH), dtype=np.int64)
    for row, text in enumerate(texts):
        ids = [vocab.get(c, 1) for c in text[:LENGTH]]
        out[row, : len(ids)] = ids
    return out


class TextClassifier(nn.Module):
    def __init__(self, vocab: int, dim: int = 64, depth: int = 2, heads: int = 4, classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, LENGTH, dim) * 0.02)
        self.conv = nn.Conv1d(dim, dim, 3, padding=1)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, 2 * dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos  # [b, L, dim]
        x = F.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x).mean(dim=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=40000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.setup(args.seed)
    rng = np.random.default_rng(args.seed)
    train_words, held_words = word_lists(args.seed)
    counts: dict[str, int] = {}
    for words in train_words:
        for w in words:
            for c in w + " ":
                counts[c] = counts.get(c, 0) + 1
    chars = sorted((c for c, n in counts.items() if n >= 5), key=lambda c: (-counts[c], c))
    vocab = {c: i + 2 for i, c in enumerate(chars)}
    train_texts, train_y = phrases(train_words, args.train_size, rng)
    x = torch.from_numpy(encode(train_texts, vocab))
    y = torch.from_numpy(train_y)
    model = TextClassifier(len(vocab) + 2)

    def loss_of(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        logits = model(x[idx])
        return F.cross_entropy(logits, y[idx]), float((logits.argmax(1) == y[idx]).float().mean())

    common.fit(model, len(x), loss_of, epochs=args.epochs, seed=args.seed, max_lr=2e-3, weight_decay=0.01)

    HERE.mkdir(exist_ok=True)
    path = HERE / "model.onnx"
    proto = common.export(
        model, (torch.ones(2, LENGTH, dtype=torch.int64),), path, input_names=["tokens"],
        output_names=["logits"], dynamic_axes={"tokens": {0: "batch"}, "logits": {0: "batch"}},
        doc=f"Language of three words from int64 character ids. input tokens int64 [batch,{LENGTH}] "
        "(0 pad, 1 unknown, 2.. vocab.txt); output logits [batch,10] for labels.txt.",
    )
    ops = [n.op_type for n in proto.graph.node]
    assert "Gather" in ops, ops
    calib_texts, _ = phrases(train_words, 512, rng)
    eval_texts, eval_y = phrases(held_words, 2000, rng)
    common.save_npz(HERE / "data" / "calibration.npz", tokens=encode(calib_texts, vocab))
    common.save_npz(HERE / "data" / "evaluation.npz", tokens=encode(eval_texts, vocab), labels=eval_y)
    common.write_labels(HERE, LANGUAGES)
    (HERE / "vocab.txt").write_text("<pad>\n<unk>\n" + "".join(f"{c}\n" if c != " " else "<space>\n" for c in chars))
    feeds = {"tokens": encode(eval_texts, vocab)}
    common.verify(model, path, feeds)
    value = common.metrics.top1(common.run_onnx(path, feeds), eval_y)
    print("op counts:", {op: ops.count(op) for op in sorted(set(ops))})
    print("examples:", eval_texts[:3])
    common.report(HERE, model, "top1", value)


if __name__ == "__main__":
    main()
