"""CPU-scale HE-friendly ViT training-step benchmark, PyTorch reference.
28x28x1 input, patch 4 -> 49 tokens, dim 64, 2 blocks, 4 heads, MLP 128, 10 classes.
Attention: relu(QK^T/sqrt(dh)) / sqrt(L) @ V. Norm: BatchNorm1d over channels."""
import os, sys, time, statistics
import torch, torch.nn as nn, torch.nn.functional as F

B, L, D, H, HID, NC, P = 64, 49, 64, 4, 128, 10, 4
DH = D // H

class TokenBN(nn.Module):
    def __init__(s, c): super().__init__(); s.bn = nn.BatchNorm1d(c)
    def forward(s, x): return s.bn(x.transpose(1, 2)).transpose(1, 2)

class Attn(nn.Module):
    def __init__(s): super().__init__(); s.qkv = nn.Linear(D, 3 * D); s.proj = nn.Linear(D, D)
    def forward(s, x):
        b, l, _ = x.shape
        q, k, v = s.qkv(x).reshape(b, l, 3, H, DH).permute(2, 0, 3, 1, 4)
        a = F.relu(q @ k.transpose(-1, -2) / DH ** 0.5) / l ** 0.5
        return s.proj((a @ v).transpose(1, 2).reshape(b, l, D))

class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.n1, s.attn, s.n2 = TokenBN(D), Attn(), TokenBN(D)
        s.fc1, s.nmlp, s.fc2 = nn.Linear(D, HID), TokenBN(HID), nn.Linear(HID, D)
    def forward(s, x):
        x = x + s.attn(s.n1(x))
        return x + s.fc2(F.gelu(s.nmlp(s.fc1(s.n2(x)))))

class Vit(nn.Module):
    def __init__(s):
        super().__init__()
        s.patch = nn.Linear(P * P, D)
        s.pos = nn.Parameter(torch.randn(1, L, D) * 0.02)
        s.blocks = nn.ModuleList([Block(), Block()])
        s.norm = TokenBN(D); s.head = nn.Linear(D, NC)
    def forward(s, x):
        b, g = x.shape[0], 28 // P
        x = x.reshape(b, g, P, g, P).permute(0, 1, 3, 2, 4).reshape(b, g * g, P * P)
        x = s.patch(x) + s.pos
        for blk in s.blocks: x = blk(x)
        return s.head(s.norm(x).mean(1))

def main():
    nt = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(nt)
    torch.manual_seed(0)
    m = Vit(); opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.05)
    x = torch.randn(B, 1, 28, 28); y = torch.tensor([(i * 7) % NC for i in range(B)])
    n = int(os.environ.get("STEPS", 30)); ts = []
    for i in range(5 + n):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(x), y); loss.backward()
        nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step(); last = loss.item()
        if i >= 5: ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}: median {ts[n//2]:.2f} ms/step (min {ts[0]:.2f}, max {ts[-1]:.2f}) over {n} steps; final loss {last:.4f}")

main()
