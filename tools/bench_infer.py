#!/usr/bin/python3
"""bench_infer.py: the PyTorch peer of the inference benchmark (f32, with a KV cache).

    /usr/bin/python3 tools/bench_infer.py MODEL.gguf [--threads N] [--prompt-tokens P] [-n N]
                                                     [--tokens]

Reads an F32 llama GGUF written by fti (a minimal reader: F32 tensors only), runs the benchmark
prompt (ids 1000 + (i * 7919) % 20000, as tools/bench_infer.c) and decodes N greedy tokens.
Prints one line: load_ms prefill_tps decode_tps ttft_ms threads (and with --tokens the ids).
"""
import struct
import sys
import time

import numpy as np
import torch


def read_gguf(path):
    with open(path, "rb") as f:
        data = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        s = data[pos:pos + n].decode("utf-8", "replace")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    assert data[:4] == b"GGUF"
    pos = 4
    take("I")
    n_tensors, n_kv = take("Q"), take("Q")
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        nd = take("I")
        ne = [take("Q") for _ in range(nd)]
        t = take("I")
        off = take("Q")
        infos.append((name, ne, t, off))
    align = kv.get("general.alignment", 32)
    start = (pos + align - 1) // align * align
    tensors = {}
    for name, ne, t, off in infos:
        if t != 0:
            raise SystemExit(f"{path}: tensor {name} is not F32 (PyTorch peer reads F32 only)")
        n = int(np.prod(ne))
        arr = np.frombuffer(data, dtype="<f4", count=n, offset=start + off)
        tensors[name] = torch.from_numpy(arr.copy()).reshape(list(reversed(ne)))
    return kv, tensors


class Llama:
    def __init__(self, kv, t, n_ctx):
        self.C = kv["llama.embedding_length"]
        self.L = kv["llama.block_count"]
        self.H = kv["llama.attention.head_count"]
        self.KV = kv.get("llama.attention.head_count_kv", self.H)
        self.D = self.C // self.H
        self.eps = kv.get("llama.attention.layer_norm_rms_epsilon", 1e-5)
        base = kv.get("llama.rope.freq_base", 10000.0)
        self.t = t
        self.emb = t["token_embd.weight"]
        self.out = t.get("output.weight", self.emb)
        theta = base ** (-torch.arange(0, self.D, 2, dtype=torch.float64) / self.D)
        ang = torch.arange(n_ctx, dtype=torch.float64)[:, None] * theta[None, :]
        self.cos, self.sin = torch.cos(ang).float(), torch.sin(ang).float()
        self.kc = torch.zeros(self.L, n_ctx, self.KV, self.D)
        self.vc = torch.zeros(self.L, n_ctx, self.KV, self.D)
        self.pos = 0

    def norm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x, p0):  # x (T, h, D), adjacent pairs
        T = x.shape[0]
        c = self.cos[p0:p0 + T][:, None, :]
        s = self.sin[p0:p0 + T][:, None, :]
        a, b = x[..., 0::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., 0::2] = a * c - b * s
        out[..., 1::2] = a * s + b * c
        return out

    @torch.no_grad()
    def forward(self, ids):  # ids (T,), returns logits of the last token
        T, p0 = len(ids), self.pos
        x = self.emb[torch.tensor(ids)]
        rep = self.H // self.KV
        mask = torch.full((T, p0 + T), float("-inf")).triu(p0 + 1)
        for l in range(self.L):
            g = lambda n: self.t[f"blk.{l}.{n}.weight"]
            h = self.norm(x, g("attn_norm"))
            q = self.rope((h @ g("attn_q").T).view(T, self.H, self.D), p0)
            k = self.rope((h @ g("attn_k").T).view(T, self.KV, self.D), p0)
            v = (h @ g("attn_v").T).view(T, self.KV, self.D)
            self.kc[l, p0:p0 + T] = k
            self.vc[l, p0:p0 + T] = v
            K = self.kc[l, :p0 + T].repeat_interleave(rep, dim=1)  # (S, H, D)
            V = self.vc[l, :p0 + T].repeat_interleave(rep, dim=1)
            att = torch.einsum("thd,shd->hts", q, K) / (self.D ** 0.5) + mask
            y = torch.einsum("hts,shd->thd", att.softmax(-1), V).reshape(T, self.C)
            x = x + y @ g("attn_output").T
            h = self.norm(x, g("ffn_norm"))
            x = x + (torch.nn.functional.silu(h @ g("ffn_gate").T) * (h @ g("ffn_up").T)) @ g("ffn_down").T
        self.pos += T
        return self.norm(x[-1], self.t["output_norm.weight"]) @ self.out.T


def main():
    args = sys.argv[1:]
    path, threads, n_prompt, n_gen, show = args[0], 1, 128, 256, False
    i = 1
    while i < len(args):
        if args[i] == "--threads":
            threads = int(args[i + 1]); i += 1
        elif args[i] == "--prompt-tokens":
            n_prompt = int(args[i + 1]); i += 1
        elif args[i] == "-n":
            n_gen = int(args[i + 1]); i += 1
        elif args[i] == "--tokens":
            show = True
        i += 1
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    kv, t = read_gguf(path)
    vocab = t["token_embd.weight"].shape[0]
    prompt = [1000 + (i * 7919) % 20000 for i in range(n_prompt)]
    if vocab < 21000:
        prompt = [p % (vocab - 16) for p in prompt]
    m = Llama(kv, t, n_prompt + n_gen + 1)
    t_load = time.perf_counter()
    logits = m.forward(prompt)
    t_prefill = time.perf_counter()
    out, t_first = [], 0.0
    for k in range(n_gen):
        tok = int(torch.argmax(logits))
        out.append(tok)
        if k == 0:
            t_first = time.perf_counter()
        if k + 1 < n_gen:
            logits = m.forward([tok])
    t_end = time.perf_counter()
    print(f"load_ms={(t_load - t0) * 1e3:.2f} prefill_tps={n_prompt / (t_prefill - t_load):.1f} "
          f"decode_tps={(n_gen - 1) / (t_end - t_first):.2f} ttft_ms={(t_first - t0) * 1e3:.2f} "
          f"threads={threads}")
    if show:
        print("tokens " + " ".join(map(str, out)))


if __name__ == "__main__":
    main()
