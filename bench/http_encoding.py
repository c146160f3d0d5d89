"""What the v2 binary tensor extension saves over JSON tensors, per request, at ImageNet size.

For one request of `--per-request` images (uint8 RGB, `--size` px) the adapter's own encoder
(`V2Protocol.encode`) writes the body both ways, FP32 NCHW (normalised, as most exported models take
it) and UINT8 NHWC (raw pixels); the floor is the preprocessing alone (`V2Protocol.tensor`: resize-free
normalisation and layout), measured in the same run, so encode time is reported as time over that floor.
The server's side is timed too: reading the tensor back from the body (orjson + numpy for JSON,
`np.frombuffer` for binary). Best of `--repeats`.

    python bench/http_encoding.py                      # 16 images of 224 px per request
    python bench/http_encoding.py --per-request 64 --size 32 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from trainprove_suspects.http_api import HEADER_LENGTH, V2Protocol
from trainprove_suspects.images import Preprocessing
from trainprove_suspects.options import HTTP_OPTIONS

from trainprove_core.config import validate_table
from trainprove_core.task import Task


def best(repeats: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def read_back(body: bytes, headers: dict[str, str]) -> np.ndarray:
    """What a server does with the body: the input tensor as an array."""
    if HEADER_LENGTH in headers:
        split = int(headers[HEADER_LENGTH])
        tensor = orjson.loads(body[:split])["inputs"][0]
        dtype = np.float32 if tensor["datatype"] == "FP32" else np.uint8
        return np.frombuffer(body[split:], dtype=dtype).reshape(tensor["shape"])
    tensor = orjson.loads(body)["inputs"][0]
    dtype = np.float32 if tensor["datatype"] == "FP32" else np.uint8
    return np.asarray(tensor["data"], dtype=dtype).reshape(tensor["shape"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--per-request", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", dest="json_out", default=None, help="write the figures here too")
    args = parser.parse_args()

    task = Task(("a", "b"), args.size)
    images = np.random.default_rng(0).integers(
        0, 256, (args.per_request, args.size, args.size, 3), dtype=np.uint8
    )
    rows = []
    print(
        f"{args.per_request} images of {args.size} px per request; best of {args.repeats}; "
        f"{platform.processor() or platform.machine()}, numpy {np.__version__}, orjson {orjson.__version__}"
    )
    print(
        f"{'tensor':<11} {'encoding':<7} {'body MiB':>9} {'x binary':>9} {'encode ms':>10} "
        f"{'over floor':>11} {'read ms':>8}"
    )
    for datatype, layout in (("FP32", "NCHW"), ("UINT8", "NHWC")):
        table = {
            "url": "http://127.0.0.1:1",
            "model": "m",
            "input": "x",
            "datatype": datatype,
            "layout": layout,
        }
        settings = validate_table(table, HTTP_OPTIONS, source="bench", where="suspect")
        protocol = V2Protocol(settings, task, task.classes)
        protocol.preprocessing = Preprocessing.from_settings(settings, None)
        floor = best(args.repeats, lambda p=protocol: p.tensor(images))
        sizes = {}
        for binary in (True, False):
            body, headers = protocol.encode(images, binary=binary)
            seconds = best(args.repeats, lambda p=protocol, b=binary: p.encode(images, binary=b))
            read = best(args.repeats, lambda body=body, headers=headers: read_back(body, headers))
            np.testing.assert_array_equal(read_back(body, headers), protocol.tensor(images))
            name = "binary" if binary else "json"
            sizes[name] = len(body)
            row = {
                "tensor": f"{datatype} {layout}",
                "encoding": name,
                "body_bytes": len(body),
                "size_vs_binary": len(body) / sizes["binary"],
                "encode_ms": seconds * 1000,
                "floor_ms": floor * 1000,
                "encode_over_floor": seconds / floor,
                "read_ms": read * 1000,
            }
            rows.append(row)
            print(
                f"{row['tensor']:<11} {name:<7} {len(body) / 2**20:>9.2f} {row['size_vs_binary']:>8.2f}x "
                f"{row['encode_ms']:>10.1f} {row['encode_over_floor']:>10.1f}x {row['read_ms']:>8.1f}"
            )
        json_row, binary_row = rows[-1], rows[-2]
        print(
            f"{'':<11} JSON is {json_row['body_bytes'] / binary_row['body_bytes']:.1f}x the bytes, "
            f"{json_row['encode_ms'] / binary_row['encode_ms']:.1f}x the encode time and "
            f"{json_row['read_ms'] / binary_row['read_ms']:.1f}x the server's read time of binary "
            f"(floor: preprocessing alone, {floor * 1000:.1f} ms)"
        )
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"size": args.size, "per_request": args.per_request, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
