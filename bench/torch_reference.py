#!/usr/bin/env python3
"""PyTorch reference timings for `npm run bench`: ViT-B/16 and BERT-base with random weights.

Plain torch (no timm, no transformers): the two models are written out below with the same shapes
as timm's `vit_base_patch16_224` (pre-LN, as in the paper) and HuggingFace's `bert-base-uncased`
classifier (post-LN, pooler + classifier). Batch 1, and for each model:

  forward            the logits under torch.no_grad()
  forward+backward   the logits with gradients on, then the backward pass of the target logit to
                     the input (pixels; BERT: the word embeddings) and to every layer's attention
                     probabilities (hooks on A, as the authors' code keeps them for transformer
                     attribution)

Each is timed `--runs` times (default 5) after one warm-up; median, min and max in milliseconds; with
2 threads (the reference: this machine's two cores) and then with 1 (what Node's single-threaded
wasm backend has; and robust when another process holds one of the cores, where OpenMP's spinning
threads make 2 threads several times slower than 1 — the script says so when it sees it). The
thread count is set for torch (torch.set_num_threads) and for OpenBLAS's own pool, which Debian's
torch does not reach (openblas_set_num_threads through ctypes).

OMP_WAIT_POLICY=PASSIVE is set before torch loads (unless already set): Debian's torch runs its
elementwise work on OpenMP threads and its products on OpenBLAS's own pthreads, and OpenMP's default
spin-waiting keeps a core busy while OpenBLAS needs both — ViT-B/16's 2-thread forward took 856 ms
that way, 279 ms with passive waiting (1 thread: 453 ms). The reference should be PyTorch at its best.

For each thread count the script first times a 197×768 · 768×3072 float32 matmul (a ViT-B MLP
layer): with OpenBLAS it runs at ~160 GFLOP/s with 2 threads on this kind of machine (~80 with 1);
with Debian's reference BLAS at ~2, and then every number here is meaningless: the script says so
on stderr (install `libopenblas0-pthread`).

The shipped models' shapes (`vit-small`: 64x64, patch 8, 4 pre-LN blocks x 64, 4 heads, MLP 128,
4 classes; `bert-small`: 4 post-LN layers x 64, 4 heads, FFN 128, vocab 398, `--small-seq` tokens;
each also as `-sparsemax` and `-entmax15`, with those attention normalisers by the sort-based
thresholds as the entmax package computes them) are timed the same way, and also for the methods that run many passes, each batched into one pass as
Captum runs them with no internal batch size: integrated gradients (50 Gauss-Legendre points, the
gradient at each, weighted and times input - baseline), SmoothGrad (16 noisy copies, sigma = 0.15 x
the input's range) and occlusion (one copy per patch with the patch zeroed; per token with its
embedding replaced by another's). These say what the same passes cost in PyTorch, so a
multi-pass method's time can be judged against the engine, not against one forward.

Prints one JSON object on stdout.

  python3 bench/torch_reference.py [--runs 5] [--threads 2,1]
                                   [--models vit-b16,bert-base,vit-small,vit-small-sparsemax,bert-small-entmax15,...]
                                   [--seq 128] [--small-seq 12]
"""
import argparse
import ctypes
import json
import math
import os
import platform
import statistics
import sys
import time

# Before torch loads its OpenMP runtime (see the docstring).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn as nn

# --------------------------------------------------------------------------------------------------
# Models


def sparsemax(x):
    """Sparsemax over the last axis by the sort-based threshold (Martins & Astudillo 2016), as the
    entmax package computes it; autograd through sort and gather gives its Jacobian."""
    z = x - x.max(dim=-1, keepdim=True).values
    srt = z.sort(dim=-1, descending=True).values
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cum = srt.cumsum(dim=-1) - 1
    support = (k * srt > cum).sum(dim=-1, keepdim=True)
    tau = cum.gather(-1, support - 1) / support.to(z.dtype)
    return (z - tau).clamp(min=0)


def entmax15(x):
    """1.5-entmax over the last axis by the sort-based threshold (Peters et al. 2019), as the entmax package does."""
    z = (x - x.max(dim=-1, keepdim=True).values) / 2
    srt = z.sort(dim=-1, descending=True).values
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    mean = srt.cumsum(dim=-1) / k
    mean_sq = (srt**2).cumsum(dim=-1) / k
    delta = (1 - k * (mean_sq - mean**2)) / k
    tau = mean - delta.clamp(min=0).sqrt()
    support = (tau <= srt).sum(dim=-1, keepdim=True)
    return (z - tau.gather(-1, support - 1)).clamp(min=0) ** 2


NORMALISERS = {"softmax": lambda s: s.softmax(dim=-1), "sparsemax": sparsemax, "entmax15": entmax15}


class Attention(nn.Module):
    """Multi-head self-attention; keeps the probabilities and, on backward, their gradient."""

    def __init__(self, dim, heads, fused=True, normaliser="softmax"):
        super().__init__()
        self.heads = heads
        self.normalise = NORMALISERS[normaliser]
        self.scale = (dim // heads) ** -0.5
        self.fused = fused
        if fused:  # timm: one qkv Linear
            self.qkv = nn.Linear(dim, 3 * dim)
        else:  # HuggingFace BERT: query, key, value
            self.query = nn.Linear(dim, dim)
            self.key = nn.Linear(dim, dim)
            self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.attn = None
        self.attn_grad = None

    def save_grad(self, g):
        self.attn_grad = g

    def forward(self, x, mask=None):
        B, N, C = x.shape
        H = self.heads
        if self.fused:
            q, k, v = self.qkv(x).reshape(B, N, 3, H, C // H).permute(2, 0, 3, 1, 4)
        else:
            split = lambda t: t.reshape(B, N, H, C // H).transpose(1, 2)
            q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = (q @ k.transpose(-2, -1)) * self.scale
        if mask is not None:
            scores = scores + mask
        attn = self.normalise(scores)
        self.attn = attn
        if attn.requires_grad:
            attn.register_hook(self.save_grad)
        out = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class ViTBlock(nn.Module):
    """Pre-LN: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim, heads, mlp_dim, normaliser="softmax"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, normaliser=normaliser)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, img=224, patch=16, dim=768, depth=12, heads=12, mlp_dim=3072, classes=1000, normaliser="softmax"):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        n = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([ViTBlock(dim, heads, mlp_dim, normaliser) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, pixels):
        x = self.patch_embed(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])

    def attentions(self):
        return [b.attn for b in self.blocks]


class BertLayer(nn.Module):
    """Post-LN: LN(x + Attn(x)), then LN(h + FFN(h))."""

    def __init__(self, dim, heads, mlp_dim, normaliser="softmax"):
        super().__init__()
        self.attn = Attention(dim, heads, fused=False, normaliser=normaliser)
        self.norm1 = nn.LayerNorm(dim, eps=1e-12)
        self.mlp = Mlp(dim, mlp_dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x, mask):
        h = self.norm1(x + self.attn(x, mask))
        return self.norm2(h + self.mlp(h))


class Bert(nn.Module):
    def __init__(self, vocab=30522, positions=512, types=2, dim=768, depth=12, heads=12, mlp_dim=3072, classes=2, normaliser="softmax"):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)
        self.position_embeddings = nn.Embedding(positions, dim)
        self.token_type_embeddings = nn.Embedding(types, dim)
        self.emb_norm = nn.LayerNorm(dim, eps=1e-12)
        self.layers = nn.ModuleList([BertLayer(dim, heads, mlp_dim, normaliser) for _ in range(depth)])
        self.pooler = nn.Linear(dim, dim)
        self.classifier = nn.Linear(dim, classes)

    def forward(self, words, attention_mask):
        """`words`: the word embeddings [B, T, D] (the input gradients are taken at)."""
        B, T, _ = words.shape
        pos = torch.arange(T).unsqueeze(0)
        x = self.emb_norm(words + self.position_embeddings(pos) + self.token_type_embeddings(torch.zeros_like(pos)))
        mask = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
        for layer in self.layers:
            x = layer(x, mask)
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))

    def attentions(self):
        return [l.attn for l in self.layers]


def init_weights(model, seed):
    """Random weights, as timm/HF initialise them (N(0, 0.02) linears and embeddings), small random biases."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            elif "norm" in name:
                p.copy_(1 + torch.randn(p.shape, generator=g) * 0.02)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return model.eval()


# --------------------------------------------------------------------------------------------------
# Timing


def stats(ms):
    return {"median": statistics.median(ms), "min": min(ms), "max": max(ms), "runs": len(ms), "samples": ms}


def timed(fn, runs):
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return stats(out)


def bench_model(name, model, make_input, runs):
    inputs = make_input()

    def forward():
        with torch.no_grad():
            model(*inputs).numpy()

    def forward_backward():
        x = inputs[0].detach().clone().requires_grad_(True)
        logits = model(x, *inputs[1:])
        target = int(logits.argmax(dim=-1)[0])
        one_hot = torch.zeros_like(logits)
        one_hot[0, target] = 1
        model.zero_grad(set_to_none=True)
        (logits * one_hot).sum().backward()
        grads = [a.attn_grad for a in model.attentions()]
        assert x.grad is not None and all(g is not None for g in grads)

    return {
        "params": sum(p.numel() for p in model.parameters()),
        "forward_ms": timed(forward, runs),
        "forward_backward_ms": timed(forward_backward, runs),
    }


def gauss_legendre(n):
    """Nodes on [0, 1] and weights summing to 1, as relprop's integrated-gradients.ts and Captum use."""
    import numpy

    x, w = numpy.polynomial.legendre.leggauss(n)
    return torch.tensor((x + 1) / 2, dtype=torch.float32), torch.tensor(w / 2, dtype=torch.float32)


def bench_methods(model, make_input, runs, image):
    """Integrated gradients (50 points), SmoothGrad (16 copies) and occlusion (one copy per unit), each batched into one pass."""
    inputs = make_input()
    x0 = inputs[0]
    rest = inputs[1:]
    with torch.no_grad():
        target = int(model(x0, *rest).argmax(dim=-1)[0])
    expand = lambda n: [r.expand(n, *r.shape[1:]) for r in rest]

    def gradient_sum(batch, weights=None):
        batch = batch.detach().requires_grad_(True)
        logits = model(batch, *expand(batch.shape[0]))
        (logits[:, target] if weights is None else logits[:, target] * weights).sum().backward()
        return batch.grad.sum(dim=0)

    alphas, weights = gauss_legendre(50)

    def integrated_gradients():
        path = alphas.view(-1, *[1] * (x0.dim() - 1)) * x0  # baseline 0
        return (gradient_sum(path, weights) * x0).numpy()

    sigma = 0.15 * float(x0.max() - x0.min())
    noise_gen = torch.Generator().manual_seed(0)

    def smoothgrad():
        noisy = x0 + sigma * torch.randn((16, *x0.shape[1:]), generator=noise_gen)
        return (gradient_sum(noisy) / 16).numpy()

    if image:
        _, c, h, w = x0.shape
        p = 8
        units = (h // p) * (w // p)
        masks = torch.ones(units, 1, h, w)
        for i in range(units):
            r, q = divmod(i, w // p)
            masks[i, :, r * p : (r + 1) * p, q * p : (q + 1) * p] = 0
        occluded = lambda: x0 * masks
    else:
        units = x0.shape[1]
        eye = torch.eye(units).view(units, units, 1)
        occluded = lambda: x0 * (1 - eye) + eye * x0[:, :1]

    def occlusion():
        with torch.no_grad():
            full = model(x0, *rest)[0, target]
            return (full - model(occluded(), *expand(units))[:, target]).numpy()

    return {
        "integrated-gradients": dict(timed(integrated_gradients, runs), passes=50),
        "smoothgrad": dict(timed(smoothgrad, runs), passes=16),
        "occlusion": dict(timed(occlusion, runs), passes=units),
    }


def set_blas_threads(n):
    """torch.set_num_threads does not reach OpenBLAS's own thread pool (Debian's build): set it too.
    Returns OpenBLAS's thread count afterwards, or None when no OpenBLAS is loaded."""
    torch.ones(2, 2) @ torch.ones(2, 2)  # make sure the BLAS library is loaded
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_set_num_threads(ctypes.c_int(n))
            return int(lib.openblas_get_num_threads())
        except (OSError, AttributeError):
            continue
    return None


def blas_check():
    """GFLOP/s of a 197×768 · 768×3072 float32 matmul, and which BLAS library is mapped."""
    a = torch.randn(197, 768)
    b = torch.randn(768, 3072)
    for _ in range(3):
        a @ b
    best = math.inf
    for _ in range(20):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    gflops = 2 * 197 * 768 * 3072 / best / 1e9
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                base = os.path.basename(path)
                if any(k in base for k in ("blas", "mkl", "blis", "atlas")):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    reference = gflops < 20
    return {
        "matmul": "197x768 @ 768x3072 float32",
        "gflops": round(gflops, 1),
        "libraries": sorted(libs),
        "openblas": any("openblas" in l for l in libs),
        "reference_like": reference,
    }


def word_input(model, T, vocab, seed):
    """The inputs of a BERT-style model: T random word pieces' embeddings (the input gradients are taken at) and a full mask."""

    def make():
        ids = torch.randint(0, vocab, (1, T), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            words = model.word_embeddings(ids)
        return (words, torch.ones(1, T, dtype=torch.long))

    return make


def normaliser_of(name, stem):
    """'vit-small-sparsemax' → 'sparsemax'; the bare stem is softmax."""
    normaliser = name[len(stem) + 1 :] or "softmax"
    if normaliser not in NORMALISERS:
        raise SystemExit(f"unknown model '{name}' ({stem}, {stem}-sparsemax, {stem}-entmax15)")
    return normaliser


def build(name, seq, small_seq=12):
    if name == "vit-b16":
        model = init_weights(ViT(), 1)
        make = lambda: (torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1)),)
        return model, make, "ViT-B/16: 224x224, patch 16, 12 pre-LN blocks x 768, 12 heads, MLP 3072, 1000 classes"
    if name == "bert-base":
        model = init_weights(Bert(), 2)
        return model, word_input(model, seq, 30522, 2), f"BERT-base: {seq} tokens, vocab 30522, 12 post-LN layers x 768, 12 heads, FFN 3072, pooler + 2 classes"
    if name.startswith("vit-small"):
        normaliser = normaliser_of(name, "vit-small")
        model = init_weights(ViT(img=64, patch=8, dim=64, depth=4, heads=4, mlp_dim=128, classes=4, normaliser=normaliser), 3)
        make = lambda: (torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3)),)
        return model, make, f"shipped image shape: 64x64, patch 8, 4 pre-LN blocks x 64, 4 heads, MLP 128, 4 classes (65 tokens), {normaliser}"
    if name.startswith("bert-small"):
        normaliser = normaliser_of(name, "bert-small")
        model = init_weights(Bert(vocab=398, positions=64, dim=64, depth=4, heads=4, mlp_dim=128, classes=2, normaliser=normaliser), 4)
        return model, word_input(model, small_seq, 398, 4), f"shipped text shape: {small_seq} tokens, vocab 398, 4 post-LN layers x 64, 4 heads, FFN 128, pooler + 2 classes, {normaliser}"
    raise SystemExit(f"unknown model '{name}' (vit-b16, bert-base, vit-small[-sparsemax|-entmax15], bert-small[-sparsemax|-entmax15])")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--threads",
        default="2,1",
        help="thread counts to time, in order (default 2,1: the machine's 2 cores, then one core as Node's single-threaded wasm has); "
        "the first is the reference",
    )
    ap.add_argument("--models", default="vit-b16,bert-base")
    ap.add_argument("--seq", type=int, default=128, help="BERT-base sequence length")
    ap.add_argument("--small-seq", type=int, default=12, help="bert-small sequence length (the bench passes its text sample's)")
    args = ap.parse_args()
    counts = [int(t) for t in str(args.threads).split(",") if t]

    load_before = os.getloadavg()[0]
    torch.manual_seed(0)
    names = [m for m in args.models.split(",") if m]
    models = {name: build(name, args.seq, args.small_seq) for name in names}
    by_threads = {}
    for n in counts:
        torch.set_num_threads(n)
        openblas_threads = set_blas_threads(n)
        blas = blas_check()
        blas["openblas_threads"] = openblas_threads
        if blas["reference_like"]:
            print(
                f"torch_reference: WARNING: a 197x768x3072 matmul runs at {blas['gflops']} GFLOP/s with {n} thread(s) — this looks like "
                f"the reference (netlib) BLAS ({', '.join(blas['libraries']) or 'library unknown'}), not OpenBLAS (~160 GFLOP/s here "
                "with 2 threads). PyTorch timings are meaningless; install libopenblas0-pthread (Debian).",
                file=sys.stderr,
            )
        timings = {}
        for name, (model, make, shape) in models.items():
            r = bench_model(name, model, make, args.runs)
            r["shape"] = shape
            if "-small" in name:
                r["methods_ms"] = bench_methods(model, make, args.runs, name.startswith("vit"))
            timings[name] = r
            print(
                f"torch_reference: {name}, {n} thread(s): forward {r['forward_ms']['median']:.0f} ms, "
                f"forward+backward {r['forward_backward_ms']['median']:.0f} ms (median of {args.runs}); BLAS {blas['gflops']} GFLOP/s",
                file=sys.stderr,
            )
        by_threads[str(n)] = {"threads": n, "blas": blas, "models": timings}
    first = by_threads[str(counts[0])]
    # More threads slower than fewer: other processes hold the cores (or OMP_WAIT_POLICY was set to ACTIVE).
    # Only the big shapes: on the small ones a second thread costs more than it brings even on an idle machine.
    contended = [
        name
        for name in names
        if "-small" not in name
        for n in counts[1:]
        for part in ("forward_ms", "forward_backward_ms")
        if n < counts[0] and by_threads[str(n)]["models"][name][part]["median"] < first["models"][name][part]["median"]
    ]
    if contended:
        print(
            f"torch_reference: WARNING: {counts[0]} threads are slower than fewer on {', '.join(sorted(set(contended)))}: "
            f"the cores are busy with other processes (load average {os.getloadavg()[0]:.2f}); the {counts[0]}-thread numbers are not "
            "PyTorch's speed on an idle machine.",
            file=sys.stderr,
        )
    result = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": counts[0],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "batch": 1,
        "runs": args.runs,
        "blas": first["blas"],
        "models": first["models"],
        "by_threads": by_threads,
        "contended": sorted(set(contended)),
        "load": {"before": load_before, "after": os.getloadavg()[0]},
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
