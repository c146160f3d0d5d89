"""The audit-file keys of the `onnx` and `http` suspect adapters (documented, with examples, in
docs/suspects.md; a test keeps the two in step).

Its own module so that the entry point (`plugin`) and the adapters (`onnx_model`, `http_api`) both read
them without importing each other; like the entry point it imports nothing heavy.
"""

from __future__ import annotations

from trainprove_core.checks import http_url, not_blank, per_channel
from trainprove_core.records import Option

LABEL_NAMES = Option(
    "label_names",
    "list[str]",
    None,
    help="the suspect's class names in its own output order (default: the task's classes, in its order)",
)
OUTPUT_KIND = Option(
    "output_kind",
    "str",
    "logits",
    choices=("logits", "probabilities", "labels"),
    help="what the suspect's output holds: logits (softmaxed here), probabilities, or one label per image "
    "(a class index or a class name)",
)

PREPROCESSING_OPTIONS = (
    Option(
        "resize",
        "int",
        None,
        min=1,
        max=4096,
        help="side to resize images to (default: the model's fixed input size if it declares one, else the "
        "task's image_size, unchanged)",
    ),
    Option(
        "interpolation",
        "str",
        "bilinear",
        choices=("bilinear", "bicubic", "nearest"),
        help="resampling used by `resize`",
    ),
    Option("channel_order", "str", "RGB", choices=("RGB", "BGR"), help="channel order the model expects"),
    Option(
        "value_range",
        "str",
        "0-1",
        choices=("0-1", "0-255"),
        help="pixel scale before mean/std for float inputs: 0-1 divides by 255, 0-255 keeps the values",
    ),
    Option(
        "mean",
        "list[float]",
        [0.5, 0.5, 0.5],
        help="per-channel mean subtracted from float inputs, RGB order, in `value_range` units (timm's "
        "default for models without a config: 0.5)",
        check=per_channel(positive=False),
    ),
    Option(
        "std",
        "list[float]",
        [0.5, 0.5, 0.5],
        help="per-channel std dividing float inputs, RGB order, in `value_range` units, each above 0",
        check=per_channel(positive=True),
    ),
)

ONNX_OPTIONS = (
    Option("model", "path", help="the .onnx file (relative to the audit file)"),
    LABEL_NAMES,
    Option("output", "str", None, help="name of the output to read (default: the model's first output)"),
    OUTPUT_KIND,
    Option(
        "layout",
        "str",
        "auto",
        choices=("auto", "NCHW", "NHWC"),
        help="input layout; auto reads it from the model (the axis of size 3 is the channel axis)",
    ),
    *PREPROCESSING_OPTIONS,
    Option(
        "batch_size",
        "int",
        64,
        min=1,
        max=1_000_000,
        help="images per session run when the model's batch axis is dynamic (a fixed one is used as is)",
    ),
    Option(
        "device",
        "str",
        "auto",
        choices=("auto", "cpu", "cuda"),
        help="auto: onnxruntime's CUDA provider when it has one, else the CPU",
    ),
    Option(
        "threads",
        "int",
        0,
        max=4096,
        help="onnxruntime intra-op threads (0: onnxruntime's default, all cores)",
    ),
)

HTTP_V2_OPTIONS = (
    Option("model", "str", None, help="protocol v2: the model's name on the server (required for v2)"),
    Option(
        "model_version", "str", None, help="protocol v2: the model version (default: the server's choice)"
    ),
    Option(
        "input", "str", None, help="protocol v2: input tensor name (default: read from the model metadata)"
    ),
    Option(
        "datatype",
        "str",
        None,
        choices=("FP32", "FP16", "FP64", "UINT8"),
        help="protocol v2: input datatype (default: read from the model metadata)",
    ),
    Option(
        "layout",
        "str",
        "auto",
        choices=("auto", "NCHW", "NHWC"),
        help="protocol v2: input layout (auto: read from the model metadata's shape)",
    ),
    Option("output", "str", None, help="protocol v2: output tensor to read (default: the first output)"),
)
HTTP_JSON_OPTIONS = (
    Option(
        "request",
        "table",
        {"images": "$images"},
        help='protocol json: the request body; the string "$images" is replaced by the list of images',
    ),
    Option(
        "image_template",
        "table",
        None,
        help='protocol json: wrap each image, e.g. {b64 = "$image"} ("$image" is replaced by the image)',
    ),
    Option(
        "image_format",
        "str",
        "png",
        choices=("png", "jpeg", "array"),
        help="protocol json: images as base64 PNG, base64 JPEG, or nested arrays (H x W x 3 integers 0-255)",
    ),
    Option(
        "jpeg_quality",
        "int",
        95,
        min=1,
        max=95,
        help="protocol json: JPEG quality (1-95) with image_format = jpeg",
    ),
    Option(
        "data_url",
        "bool",
        False,
        help="protocol json: send base64 images as data: URLs (data:image/png;base64,...)",
    ),
    Option(
        "response_path",
        "str",
        None,
        help='protocol json: where the answers are, e.g. "predictions.*.label" (dot-separated keys, list '
        "indices, * for every element); required for json",
    ),
)
HTTP_OPTIONS = (
    Option(
        "url",
        "str",
        help="protocol v2: the server's base URL (requests go to {url}/v2/models/{model}/infer); "
        "protocol json: the full endpoint URL (http:// or https://)",
        check=http_url,
    ),
    Option(
        "protocol",
        "str",
        "v2",
        choices=("v2", "json"),
        help="v2: the Open Inference Protocol (KServe, Triton, MLServer); json: any JSON API described by "
        "the protocol-json keys",
    ),
    LABEL_NAMES,
    OUTPUT_KIND,
    *HTTP_V2_OPTIONS,
    *HTTP_JSON_OPTIONS,
    *PREPROCESSING_OPTIONS,
    Option(
        "token_env",
        "str",
        None,
        secret=True,
        help="name of the environment variable holding the API token (the token itself never goes in the "
        "audit file, the reports or the cache)",
    ),
    Option("auth_header", "str", "Authorization", help="header that carries the token", check=not_blank),
    Option(
        "auth_scheme",
        "str",
        "Bearer",
        help='prefix of the token in that header ("" for APIs that take the bare key, e.g. x-api-key)',
    ),
    Option("images_per_request", "int", 16, min=1, max=100_000, help="images in one request"),
    Option("concurrency", "int", 4, min=1, max=1024, help="requests in flight at once"),
    Option(
        "timeout",
        "float",
        30.0,
        min=0,
        max=86_400,
        exclusive_min=True,
        help="seconds for one whole response to arrive (at most 64 MiB)",
    ),
    Option(
        "retries",
        "int",
        5,
        max=1000,
        help="retries of a request after a timeout, connection error, cut-off or non-JSON body, 429 or 5xx",
    ),
    Option(
        "backoff",
        "float",
        0.5,
        min=0,
        max=3600,
        help="first retry delay in seconds; doubles per retry (with jitter), up to max_wait",
    ),
    Option(
        "max_wait",
        "float",
        60.0,
        min=0,
        max=86_400,
        help="longest single wait in seconds; a server asking (Retry-After) for longer is an error",
    ),
    Option(
        "budget",
        "int",
        None,
        min=1,
        help="most images this suspect may be sent, over all runs (answers are cached; default: no limit)",
    ),
    Option(
        "revision",
        "str",
        None,
        help="any tag of the remote model's version; change it to re-query a suspect whose model changed",
    ),
    Option(
        "batch_size",
        "int",
        256,
        min=1,
        max=1_000_000,
        help="images per cached chunk (a resumed audit re-sends at most one chunk)",
    ),
)
