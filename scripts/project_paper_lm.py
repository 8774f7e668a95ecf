#!/usr/bin/env python3
"""Projects the encrypted forward of the paper's 6-layer, 128-token LM onto our library from the
measured forward of our CPU LM (`results/he_agreement_lm.csv`, one quiet batch).

This is a formula-based extrapolation, not a dry run of `EncryptedLm` (whose attention needs one
ciphertext per tensor: 128 tokens x stride 2048 span 8). Each kind of work measured on our LM is
scaled by how its operation count grows, per window:

- ciphertexts per tensor: ours 32 tokens x stride 256 = 8,192 slots (4 windows per ciphertext);
  the paper's 128 x 2048 = 262,144 slots = 8 ciphertexts of 2^15 slots per window;
- bootstraps: the same plan per block (x, LayerNorm 1, attention heads, LayerNorm 2) plus the final
  LayerNorm's input, each on every ciphertext of the tensor;
- LayerNorms: 2 per block plus the final one, per ciphertext, times log2(stride) for the rotation trees;
- attention: causal score diagonals (L of them) per ciphertext, each with one polynomial, one product
  and log2(d_head) rotations twice (in-head sum, replicate); the products of a tile with its
  neighbour's keys (scores crossing a tile boundary) are not counted (a lower bound: up to 2x here);
- plaintext-weight products: the BSGS diagonals (d_in + d_out - 1 per matrix) per ciphertext, the
  blocks only (our head's 6,002-word vocabulary is taken out of the measured time in proportion to
  its diagonals); weights encoded per forward (all of them pre-encoded would take terabytes).

Usage: python3 scripts/project_paper_lm.py [results/he_agreement_lm.csv]
"""
import csv
import math
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "results/he_agreement_lm.csv"
rows = [r for r in csv.DictReader(l for l in open(path) if not l.startswith("#"))]
# The quietest full batch: the smallest forward time among batches with the full number of windows.
full = max(int(r["batch_windows"]) for r in rows)
r = min((r for r in rows if int(r["batch_windows"]) == full), key=lambda r: float(r["batch_forward_seconds"]))
per_window = full  # windows sharing one forward
t = {k: float(r[k + "_seconds"]) / per_window for k in
     ["bootstrap", "normalization", "activation", "cipher_matmul", "plain_matmul", "encode", "other"]}
threads = int(r["threads"])

ours = dict(L=32, d=128, hidden=256, blocks=2, heads=4, stride=256, vocab=6002, boots=int(r["bootstraps"]))
paper = dict(L=128, d=512, hidden=2048, blocks=6, heads=8, stride=2048)
slots = 2 ** 15
ct_ours = ours["L"] * ours["stride"] / slots        # ciphertexts per window (a quarter)
ct_paper = paper["L"] * paper["stride"] / slots     # 8

def diags(m):
    d, h = m["d"], m["hidden"]
    return 4 * (2 * d - 1) + 2 * (d + h - 1)          # q, k, v, proj; fc1, fc2

boots_paper = paper["blocks"] * 4 + 1
norms = lambda m: 2 * m["blocks"] + 1
head_diags = math.ceil(ours["vocab"] / ours["stride"]) * (ours["d"] + ours["stride"] - 1)
block_share = ours["blocks"] * diags(ours) / (ours["blocks"] * diags(ours) + head_diags)
log = math.log2

proj = {
    "bootstrap": t["bootstrap"] * (boots_paper * ct_paper) / (ours["boots"] * ct_ours),
    "normalization": t["normalization"] * (norms(paper) * ct_paper * log(paper["stride"]))
    / (norms(ours) * ct_ours * log(ours["stride"])),
    "activation": t["activation"] * (paper["blocks"] * paper["L"] * ct_paper)
    / (ours["blocks"] * ours["L"] * ct_ours),
    "cipher_matmul": t["cipher_matmul"] * (paper["blocks"] * paper["L"] * ct_paper * log(paper["d"] // paper["heads"]))
    / (ours["blocks"] * ours["L"] * ct_ours * log(ours["d"] // ours["heads"])),
    "plain_matmul": t["plain_matmul"] * block_share * (paper["blocks"] * diags(paper) * ct_paper)
    / (ours["blocks"] * diags(ours) * ct_ours),
    # Encoding is per diagonal and per forward (not per ciphertext); our forward serves 4 windows.
    "encode": t["encode"] * per_window * block_share * (paper["blocks"] * diags(paper)) / (ours["blocks"] * diags(ours)),
}
total = sum(proj.values())
print(f"measured (batch {r['batch']}, {full} windows, {threads} threads), per window: "
      + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()))
print(f"projection for the paper's LM (6 blocks, d 512, MLP 2048, 8 heads, 128 tokens; blocks only, no head), one window, {threads} threads:")
for k, v in proj.items():
    print(f"  {k:14s} {v:8.0f} s  ({100 * v / total:4.1f} %)")
print(f"  {'total':14s} {total:8.0f} s = {total / 3600:.2f} h on {threads} threads = {total * threads / 3600:.1f} core-hours")
print(f"paper: 305 s on 32 cores + an A100 (= {305 * 32 / 3600:.1f} CPU core-hours plus the GPU)")
