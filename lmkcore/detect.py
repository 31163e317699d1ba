"""Your own images through trained checkpoints: photos, folders or short videos in, annotated images and the
keypoints (JSON) out; the workbook's answer to a method's demo page.

    python -m lmkcore.detect --checkpoint runs/cpu/autolink_k10_mtfl-80_4500_... photo.jpg faces/ clip.mp4
    python -m lmkcore.detect --checkpoint RUN_A --checkpoint RUN_B --out detections --numbers photo.jpg

Each image is resized whole to the checkpoint's training resolution (as the stores are), its keypoints
mapped back to the original pixels and drawn there: the learned graph's strongest K - 1 edges where the
method has one, only the confident landmarks where it gives confidences. Notebook 09's upload widget calls
`detect_image`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


@torch.no_grad()
def detect_image(method, image: np.ndarray) -> dict:
    """Keypoints of one RGB uint8 image `(H, W, 3)`: {"points": (K, 2) pixels of `image`, "visible": (K,) bool
    (confidence >= the method's threshold where it has confidences), "graph": (K, K) or None}."""
    from .checkpoint import method_resolution
    from .ops.warp import resize

    h, w = image.shape[:2]
    r = method_resolution(method)
    dev = next((p.device for p in method.parameters()), torch.device("cpu")) if hasattr(method, "parameters") \
        else torch.device("cpu")  # the method stays where it is (the inspector's may be on a GPU)
    x = torch.from_numpy(np.array(image, np.uint8)).permute(2, 0, 1)[None].float().div(255.0)  # a writable copy
    x = resize(x, r, antialias=True).to(dev)  # (1, 3, r, r): the whole image, as the stores hold it
    kp = method.keypoints(x)[0].float().cpu()  # (K, 2) in [-1, 1] of the r x r image
    u = (kp + 1) / 2 * (r - 1)  # pixels of the r x r image
    points = ((u + 0.5) * torch.tensor([w / r, h / r]) - 0.5).numpy()
    conf = method.confidence(x)
    visible = (conf[0] >= method.confidence_threshold).cpu().numpy() if conf is not None else np.ones(len(points), bool)
    graph = method.graph()
    return {"points": points, "visible": visible, "graph": graph.detach().cpu().numpy() if graph is not None else None}


def read_inputs(paths: list[str], *, every: int = 10, max_frames: int = 50):
    """(name, RGB uint8 image) for each image file, each image in a folder (sorted), and every `every`-th frame
    (at most `max_frames`) of each video; anything else is an error naming it."""
    import cv2

    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise FileNotFoundError(f"{p}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            for f in files:
                yield from read_inputs([str(f)])
        elif p.suffix.lower() in VIDEO_SUFFIXES:
            cap = cv2.VideoCapture(str(p))
            if not cap.isOpened():
                raise ValueError(f"{p}: OpenCV cannot open this video")
            i = kept = 0
            while kept < max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                if i % every == 0:
                    yield f"{p.stem}_f{i:05d}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    kept += 1
                i += 1
            cap.release()
            if kept == 0:
                raise ValueError(f"{p}: no frame could be read")
        elif p.is_file():
            from PIL import Image

            try:
                with Image.open(p) as im:
                    yield p.stem, np.asarray(im.convert("RGB"))
            except Exception as e:  # PIL raises several types for files it cannot read
                raise ValueError(f"{p}: not a readable image ({type(e).__name__}: {e})") from None
        else:
            raise FileNotFoundError(f"{p}: no such image, folder or video")


def run(checkpoints: list[str], inputs: list[str], out: str | Path, *, numbers: bool = False, every: int = 10,
        max_frames: int = 50, runs_dir: str = "runs") -> list[Path]:
    """Annotated PNGs `out/<input>__<checkpoint>.png` and `out/keypoints.json`; the files written."""
    from PIL import Image

    from .checkpoint import load_method
    from .runs import resolve_checkpoints, short_labels
    from .viz.draw import annotate

    chosen = [c for spec in checkpoints for c in resolve_checkpoints(spec, runs_dir, required=True)[1]]
    _, short = short_labels([c.label for c in chosen])
    methods = {short[c.label]: load_method(c.path) for c in chosen}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written, record = [], {}
    for name, image in read_inputs(inputs, every=every, max_frames=max_frames):
        for label, method in methods.items():
            d = detect_image(method, image)
            tag = "".join(ch if ch.isalnum() or ch in "-.@" else "_" for ch in label)
            f = out / f"{name}__{tag}.png"
            Image.fromarray(annotate(image, d["points"], visible=d["visible"], graph=d["graph"],
                                     numbers=numbers)).save(f)
            written.append(f)
            record.setdefault(name, {})[label] = {"points": np.round(d["points"], 2).tolist(),
                                                  "visible": d["visible"].tolist()}
    (out / "keypoints.json").write_text(json.dumps(record, indent=1))
    return written + [out / "keypoints.json"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="image files, folders of images, or videos")
    p.add_argument("--checkpoint", action="append", required=True,
                   help="a run directory (its newest snapshot) or a .pt file; repeatable")
    p.add_argument("--out", default="detections", help="folder for the annotated images (default: detections/)")
    p.add_argument("--numbers", action="store_true", help="write each keypoint's number beside it")
    p.add_argument("--every", type=int, default=10, help="videos: every N-th frame (default 10)")
    p.add_argument("--max-frames", type=int, default=50, help="videos: at most this many frames (default 50)")
    a = p.parse_args(argv)
    if a.every < 1 or a.max_frames < 1:
        raise SystemExit(f"--every and --max-frames must be >= 1, got {a.every} and {a.max_frames}")
    try:
        files = run(a.checkpoint, a.inputs, a.out, numbers=a.numbers, every=a.every, max_frames=a.max_frames)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(str(e)) from None
    print(f"{len(files) - 1} annotated image(s) and keypoints.json in {a.out}")


if __name__ == "__main__":
    main()
