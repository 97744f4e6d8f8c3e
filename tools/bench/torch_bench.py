#!/usr/bin/python3
"""The PyTorch twin of `posttrain model bench`, for `npm run bench:compare`.

Same model and work: a Llama-family decoder (d 256, 4 layers, 4 heads of 64,
SwiGLU 688, vocab 256, untied LM head, RMSNorm eps 1e-6, RoPE theta 10000:
3,295,488 parameters); a training step is forward + backward + Adam (lr 1e-3)
on B=8 rows of T=128 tokens with the same synthetic pattern and the same loss
(mean next-token NLL over B*(T-1) targets); decoding is greedy with a KV cache
(prefill the 32-token prompt, then one token at a time, cache grown by
torch.cat) for 64 new tokens at batch 1, 8 and 32. Prints one JSON line.

  /usr/bin/python3 tools/bench/torch_bench.py --threads 1 --steps 5
"""
import argparse
import json
import math
import os
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=1)
p.add_argument("--steps", type=int, default=5)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--decode-batches", default="1,8,32")
p.add_argument("--prompt-len", type=int, default=32)
p.add_argument("--new-tokens", type=int, default=64)
p.add_argument("--decode-reps", type=int, default=3)
args = p.parse_args()
# OpenBLAS reads its thread count at load: set it before torch loads the library.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(0)

V, D, L, H, E, I, T, B = 256, 256, 4, 4, 64, 688, 128, 8
EPS, THETA = 1e-6, 10000.0


class RMSNorm(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight


def rotate_half(x):
    return torch.cat((-x[..., E // 2:], x[..., : E // 2]), dim=-1)


def rope(positions):
    inv = 1.0 / (THETA ** (torch.arange(0, E, 2, dtype=torch.float32) / E))
    ang = positions[:, None].float() * inv[None, :]  # (T, E/2)
    emb = torch.cat((ang, ang), dim=-1)
    return emb.cos(), emb.sin()  # (T, E)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = RMSNorm(D), RMSNorm(D)
        self.q = torch.nn.Linear(D, H * E, bias=False)
        self.k = torch.nn.Linear(D, H * E, bias=False)
        self.v = torch.nn.Linear(D, H * E, bias=False)
        self.o = torch.nn.Linear(H * E, D, bias=False)
        self.gate = torch.nn.Linear(D, I, bias=False)
        self.up = torch.nn.Linear(D, I, bias=False)
        self.down = torch.nn.Linear(I, D, bias=False)

    def forward(self, x, cos, sin, cache=None):
        b, t, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(b, t, H, E).transpose(1, 2)  # (B, H, T, E)
        k = self.k(h).view(b, t, H, E).transpose(1, 2)
        v = self.v(h).view(b, t, H, E).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if cache[0] is not None:
                k = torch.cat((cache[0], k), dim=2)
                v = torch.cat((cache[1], v), dim=2)
            cache[0], cache[1] = k, v
        kl = k.shape[2]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(E)  # (B, H, T, K)
        if t > 1:
            mask = torch.full((t, kl), float("-inf")).triu(kl - t + 1)
            scores = scores + mask
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, H * E)
        x = x + self.o(y)
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, D)
        self.layers = torch.nn.ModuleList(Block() for _ in range(L))
        self.norm = RMSNorm(D)
        self.head = torch.nn.Linear(D, V, bias=False)

    def forward(self, ids, start=0, caches=None):
        cos, sin = rope(torch.arange(start, start + ids.shape[1]))
        x = self.embed(ids)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if caches is None else caches[i])
        return self.head(self.norm(x))


model = Llama()
params = sum(p.numel() for p in model.parameters())
assert params == 3295488, params
ids = torch.tensor([[(b * 7 + t * 3 + ((t * t) % 5)) % V for t in range(T)] for b in range(B)])
opt = torch.optim.Adam(model.parameters(), lr=1e-3)


def train_step():
    logits = model(ids)  # all T tokens, as posttrain's tokenLogProbs; T-1 targets
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


for _ in range(args.warmup):
    train_step()
times = []
for _ in range(args.steps):
    t0 = time.perf_counter()
    loss = train_step()
    times.append(time.perf_counter() - t0)
times.sort()
median = times[len(times) // 2]


@torch.inference_mode()
def decode(batch, new_tokens):
    prompt = torch.tensor([[(b * 5 + t * 11 + 1) % V for t in range(args.prompt_len)] for b in range(batch)])
    caches = [[None, None] for _ in range(L)]
    logits = model(prompt, 0, caches)
    nxt = logits[:, -1].argmax(-1, keepdim=True)
    n = 1
    for step in range(new_tokens - 1):
        logits = model(nxt, args.prompt_len + step, caches)
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        n += 1
    return batch * n


decode_out = []
for batch in [int(x) for x in args.decode_batches.split(",")]:
    decode(batch, 2)
    rates = []
    for _ in range(args.decode_reps):
        t0 = time.perf_counter()
        n = decode(batch, args.new_tokens)
        rates.append(n / (time.perf_counter() - t0))
    rates.sort()
    decode_out.append({"batch": batch, "promptLen": args.prompt_len, "newTokens": args.new_tokens, "tokensPerSecond": rates[len(rates) // 2]})

print(json.dumps({
    "torch": torch.__version__, "threads": torch.get_num_threads(), "python": sys.executable,
    "parameters": params,
    "train": {"steps": args.steps, "tokensPerStep": B * T, "secondsPerStepMedian": median, "tokensPerSecond": B * T / median, "finalLoss": loss},
    "decode": decode_out,
}))
