#!/usr/bin/python3
"""torch_reference.py: PyTorch goldens for fti's model and trainer (parts 05 and 07).

Builds the same Llama-style model as src/05_model.c (token embedding, RMSNorm, multi-head attention
with grouped kv heads and RoPE on adjacent pairs, SwiGLU, final RMSNorm, tied output) in PyTorch,
with weights drawn here and saved, and writes into tests/data/model/:

    golden.json    config, tokens (B, T+1), loss, per-tensor gradient L2 norms, and the loss after
                   each of a few AdamW steps on the first sequence (lr, betas, eps, weight
                   decay on matrices only,
                   global-norm clipping, warmup then cosine schedule — the trainer's defaults)
    weights.bin    the parameters as little-endian f32 in fti's layout order (token_embd, then per
                   layer attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up,
                   ffn_down, then output_norm)
    logits.bin     the logits (B, T, V) of the first forward, little-endian f32

tests/test_model_torch.c (model) and tests/test_train.c (AdamW steps) compare against them.
Re-run with Debian's torch (python3-torch) from the repository root:

    /usr/bin/python3 tools/torch_reference.py            # writes tests/data/model/
    /usr/bin/python3 tools/torch_reference.py --bench    # the benchmark peer (see mk/train.mk)

The bench mode times full training steps (forward, backward, AdamW) of the stories15M shape at
vocab 4096, batch 8 x context 256 with random tokens and prints tokens/s.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

CFG = dict(vocab_size=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=48,
           context_len=16, rope_base=10000.0, norm_eps=1e-5, tied_embeddings=1)
BATCH, CTX = 2, 16
SEED = 1234
# trainer settings of the AdamW golden (the C test uses the same)
TRAIN = dict(lr=1e-2, min_lr_frac=0.1, warmup_steps=2, total_steps=6, beta1=0.9, beta2=0.95,
             eps=1e-8, weight_decay=0.1, grad_clip=1.0)


def layout(cfg):
    """(name, shape, is_norm) in fti's order."""
    C, F = cfg["dim"], cfg["hidden_dim"]
    D = C // cfg["n_heads"]
    HD, KVD = cfg["n_heads"] * D, cfg["n_kv_heads"] * D
    out = [("token_embd", (cfg["vocab_size"], C), False)]
    for l in range(cfg["n_layers"]):
        p = "blk.%d." % l
        out += [(p + "attn_norm", (C,), True), (p + "attn_q", (HD, C), False),
                (p + "attn_k", (KVD, C), False), (p + "attn_v", (KVD, C), False),
                (p + "attn_output", (C, HD), False), (p + "ffn_norm", (C,), True),
                (p + "ffn_gate", (F, C), False), (p + "ffn_up", (F, C), False),
                (p + "ffn_down", (C, F), False)]
    out.append(("output_norm", (C,), True))
    if not cfg["tied_embeddings"]:
        out.append(("output", (cfg["vocab_size"], C), False))
    return out


def rope_tables(cfg, T):
    D = cfg["dim"] // cfg["n_heads"]
    cos = np.zeros((T, D // 2), np.float32)
    sin = np.zeros((T, D // 2), np.float32)
    for t in range(T):
        for j in range(D // 2):
            ang = t * math.pow(cfg["rope_base"], -2.0 * j / D)
            cos[t, j], sin[t, j] = math.cos(ang), math.sin(ang)
    return torch.from_numpy(cos), torch.from_numpy(sin)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):
    # x (B, T, H, D): rotate adjacent pairs (2i, 2i+1)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


def forward(cfg, P, tokens, cos, sin):
    B, T = tokens.shape
    C, H, KV = cfg["dim"], cfg["n_heads"], cfg["n_kv_heads"]
    D = C // H
    eps = cfg["norm_eps"]
    x = P["token_embd"][tokens]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for l in range(cfg["n_layers"]):
        p = "blk.%d." % l
        h = rmsnorm(x, P[p + "attn_norm"], eps)
        q = (h @ P[p + "attn_q"].t()).view(B, T, H, D)
        k = (h @ P[p + "attn_k"].t()).view(B, T, KV, D)
        v = (h @ P[p + "attn_v"].t()).view(B, T, KV, D)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = H // KV
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, T, D)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + y @ P[p + "attn_output"].t()
        h = rmsnorm(x, P[p + "ffn_norm"], eps)
        g = torch.nn.functional.silu(h @ P[p + "ffn_gate"].t()) * (h @ P[p + "ffn_up"].t())
        x = x + g @ P[p + "ffn_down"].t()
    x = rmsnorm(x, P["output_norm"], eps)
    W = P["token_embd"] if cfg["tied_embeddings"] else P["output"]
    return x @ W.t()


def lr_at(step, tr):
    """Warmup then cosine to min_lr_frac * lr; step counts from 0 (the trainer's schedule)."""
    if step < tr["warmup_steps"]:
        return tr["lr"] * (step + 1) / tr["warmup_steps"]
    prog = (step - tr["warmup_steps"]) / max(1, tr["total_steps"] - tr["warmup_steps"])
    prog = min(1.0, prog)
    lo = tr["lr"] * tr["min_lr_frac"]
    return lo + 0.5 * (tr["lr"] - lo) * (1.0 + math.cos(math.pi * prog))


def make_params(cfg, rng):
    P = {}
    for name, shape, is_norm in layout(cfg):
        if is_norm:
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            a = 0.08 * rng.standard_normal(shape)
        P[name] = torch.tensor(a.astype(np.float32), requires_grad=True)
    return P


def goldens(out_dir):
    torch.manual_seed(SEED)
    rng = np.random.RandomState(SEED)
    cfg = CFG
    P = make_params(cfg, rng)
    tokens = rng.randint(0, cfg["vocab_size"], size=(BATCH, CTX + 1)).astype(np.int64)
    inp, tgt = torch.from_numpy(tokens[:, :-1]), torch.from_numpy(tokens[:, 1:])
    cos, sin = rope_tables(cfg, CTX)
    names = [n for n, _, _ in layout(cfg)]

    logits = forward(cfg, P, inp, cos, sin)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg["vocab_size"]), tgt.reshape(-1))
    loss.backward()
    grad_norms = {n: float(P[n].grad.double().norm()) for n in names}
    logits_np = logits.detach().numpy().astype("<f4")
    weights = b"".join(P[n].detach().numpy().astype("<f4").tobytes() for n in names)

    # a few trainer steps on the first sequence (the C trainer gets exactly ctx+1 tokens, so its
    # sampler can only pick that window): AdamW, no decay on norm weights, global-norm clip
    tr = TRAIN
    inp, tgt = inp[:1], tgt[:1]
    decay = [P[n] for n, _, is_norm in layout(cfg) if not is_norm]
    no_decay = [P[n] for n, _, is_norm in layout(cfg) if is_norm]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tr["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=tr["lr"], betas=(tr["beta1"], tr["beta2"]), eps=tr["eps"])
    step_losses = []
    for step in range(tr["total_steps"]):
        for p in P.values():
            p.grad = None
        lg = forward(cfg, P, inp, cos, sin)
        ls = torch.nn.functional.cross_entropy(lg.reshape(-1, cfg["vocab_size"]), tgt.reshape(-1))
        ls.backward()
        torch.nn.utils.clip_grad_norm_(list(P.values()), tr["grad_clip"])
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, tr)
        opt.step()
        step_losses.append(float(ls))
    with torch.no_grad():
        lg = forward(cfg, P, inp, cos, sin)
        final_loss = float(torch.nn.functional.cross_entropy(lg.reshape(-1, cfg["vocab_size"]),
                                                             tgt.reshape(-1)))

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "weights.bin"), "wb") as f:
        f.write(weights)
    with open(os.path.join(out_dir, "logits.bin"), "wb") as f:
        f.write(logits_np.tobytes())
    doc = dict(note="written by tools/torch_reference.py (torch %s); do not edit" % torch.__version__,
               config=cfg, batch=BATCH, ctx=CTX, tokens=tokens.tolist(), loss=float(loss),
               grad_norms=grad_norms, train=tr, step_losses=step_losses, final_loss=final_loss)
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote %s: loss %.6f, %d params, final loss after %d steps %.6f"
          % (out_dir, float(loss), len(weights) // 4, tr["total_steps"], final_loss))


def bench(threads, steps, vocab, batch, ctx):
    torch.set_num_threads(threads)
    cfg = dict(vocab_size=vocab, dim=288, n_layers=6, n_heads=6, n_kv_heads=6, hidden_dim=768,
               context_len=ctx, rope_base=10000.0, norm_eps=1e-5, tied_embeddings=1)
    rng = np.random.RandomState(1)
    P = make_params(cfg, rng)
    opt = torch.optim.AdamW(list(P.values()), lr=1e-4, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=0.1)
    cos, sin = rope_tables(cfg, ctx)
    tokens = torch.from_numpy(rng.randint(0, vocab, size=(batch, ctx + 1)).astype(np.int64))
    inp, tgt = tokens[:, :-1], tokens[:, 1:]
    times = []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        lg = forward(cfg, P, inp, cos, sin)
        ls = torch.nn.functional.cross_entropy(lg.reshape(-1, vocab), tgt.reshape(-1))
        ls.backward()
        torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
        opt.step()
        if step > 0:  # the first step warms up allocators
            times.append(time.perf_counter() - t0)
    best = min(times)
    print("torch threads=%d tokens/s=%.1f (best of %d steps, %.3f s/step) loss=%.4f"
          % (threads, batch * ctx / best, steps, best, float(ls)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data/model")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=256)
    a = ap.parse_args()
    if a.bench:
        bench(a.threads, a.steps, a.vocab, a.batch, a.ctx)
    else:
        goldens(a.out)


if __name__ == "__main__":
    sys.exit(main())
