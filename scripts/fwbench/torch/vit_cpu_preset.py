"""PyTorch twin of transformer::model::ModelConfig::vit_cpu() for a throughput comparison.

28x28x1 input, patch 7 -> 16 tokens (mean pooling), width 64, 2 pre-norm blocks, 4 heads, MLP 128.
BatchNorm over channels before attention and MLP, across the heads (before the projection), inside the
MLP (after fc1) and at the end. Attention: GELU(Q K^T / sqrt(16)) / sqrt(16) @ V. Cross-entropy, AdamW
(lr 2e-3, wd 0.05), global-norm clipping 1.0, batch 128, one fixed random batch.
Usage: python vit_cpu_preset.py THREADS  -> prints samples/s (median step of 50 after 10 warm-up).
"""
import sys, time, statistics
import torch, torch.nn as nn, torch.nn.functional as F

B, P, D, H, HID, NC = 128, 7, 64, 4, 128, 10
G = 28 // P
L = G * G
DH = D // H

class TokenBN(nn.Module):
    def __init__(s, c): super().__init__(); s.bn = nn.BatchNorm1d(c)
    def forward(s, x): return s.bn(x.transpose(1, 2)).transpose(1, 2)

class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.n1, s.qkv, s.hbn, s.proj = TokenBN(D), nn.Linear(D, 3 * D), TokenBN(D), nn.Linear(D, D)
        s.n2, s.fc1, s.mbn, s.fc2 = TokenBN(D), nn.Linear(D, HID), TokenBN(HID), nn.Linear(HID, D)
    def forward(s, x):
        b, l, _ = x.shape
        q, k, v = s.qkv(s.n1(x)).reshape(b, l, 3, H, DH).permute(2, 0, 3, 1, 4)
        a = F.gelu(q @ k.transpose(-1, -2) / DH ** 0.5) / l ** 0.5
        x = x + s.proj(s.hbn((a @ v).transpose(1, 2).reshape(b, l, D)))
        return x + s.fc2(F.gelu(s.mbn(s.fc1(s.n2(x)))))

class Vit(nn.Module):
    def __init__(s):
        super().__init__()
        s.patch = nn.Linear(P * P, D)
        s.pos = nn.Parameter(torch.randn(1, L, D) * 0.02)
        s.blocks = nn.ModuleList([Block(), Block()])
        s.norm, s.head = TokenBN(D), nn.Linear(D, NC)
    def forward(s, x):
        b = x.shape[0]
        x = x.reshape(b, 1, G, P, G, P).permute(0, 2, 4, 1, 3, 5).reshape(b, L, P * P)
        x = s.patch(x) + s.pos
        for blk in s.blocks:
            x = blk(x)
        return s.head(s.norm(x).mean(1))

def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(n)
    torch.manual_seed(0)
    m = Vit()
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3, weight_decay=0.05)
    x = torch.randn(B, 1, 28, 28)
    y = torch.arange(B) % NC
    times = []
    for i in range(60):
        t = time.perf_counter()
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if i >= 10:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    params = sum(p.numel() for p in m.parameters())
    print(f"pytorch {torch.__version__} threads {n}: {med * 1e3:.2f} ms/step, {B / med:.0f} samples/s, {params} parameters")

main()
