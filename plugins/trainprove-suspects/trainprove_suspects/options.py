"""The audit-file keys of the `onnx` and `http` suspect adapters (documented, with examples, in
docs/suspects.md; a test keeps the two in step).

Its own module so that the entry point (`plugin`) and the adapters (`onnx_model`, `http_api`) both read
them without importing each other; like the entry point it imports nothing heavy.
"""

from __future__ import annotations

from trainprove_core import Option, http_url, not_blank, per_channel, torch_device

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
        help="onnxruntime intra-op threads (0: the threads policy, the cores the load leaves idle, or "
        "$TRAINPROVE_THREADS)",
    ),
)

TRANSFORMERS_OPTIONS = (
    Option(
        "model",
        "path-or-id",
        help="a directory saved with `save_pretrained` (config.json, the weights, preprocessor_config.json), "
        "relative to the audit file, or a Hugging Face hub id `org/name`",
    ),
    Option("revision", "str", None, help="hub id only: the branch, tag or commit (default: main)"),
    Option(
        "label_names",
        "list[str]",
        None,
        help="the model's class names in its output order, instead of config.json's id2label (for a model "
        "saved with LABEL_0, LABEL_1 ...); matched to the task's classes by name",
    ),
    Option("batch_size", "int", 64, min=1, max=1_000_000, help="images per forward pass"),
    Option(
        "device",
        "str",
        "auto",
        help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
        check=torch_device,
    ),
    Option(
        "threads",
        "int",
        0,
        max=4096,
        help="CPU threads of a forward pass (0: the threads policy, the cores the load leaves idle, or "
        "$TRAINPROVE_THREADS)",
    ),
)

MODEL = Option(
    "model",
    "str",
    None,
    help="protocol v2: the model's name on the server; protocol openai-chat: the request's `model` "
    "(required for both)",
)
HTTP_V2_OPTIONS = (
    MODEL,
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
        choices=("auto", "NCHW", "NHWC", "flat"),
        help="protocol v2: input layout (auto: read from the model metadata's shape); flat sends each image "
        "as one vector of H x W x 3 values (NHWC order), for models served on [-1, D]",
    ),
    Option("output", "str", None, help="protocol v2: output tensor to read (default: the first output)"),
    Option(
        "tensor_encoding",
        "str",
        "auto",
        choices=("auto", "binary", "json"),
        help="protocol v2: the input tensor as raw bytes (the binary tensor extension) or as a JSON list; "
        "auto tries binary once and falls back to JSON if the server refuses it",
    ),
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
        help="protocol json: images as base64 PNG, base64 JPEG, or nested arrays (H x W x 3 integers 0-255); "
        "protocols hf-inference and openai-chat: png or jpeg",
    ),
    Option(
        "jpeg_quality",
        "int",
        95,
        min=1,
        max=95,
        help="protocols json, hf-inference, openai-chat: JPEG quality (1-95) with image_format = jpeg",
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
IMAGES_PER_REQUEST = Option(
    "images_per_request",
    "int",
    16,
    min=1,
    help="images in one request (hf-inference and openai-chat: always 1)",
)
HF_INFERENCE_OPTIONS = (
    Option(
        "image_payload",
        "str",
        "base64",
        choices=("base64", "bytes"),
        help='protocol hf-inference: the body of a request: base64 = {"inputs": "<base64 image>"} JSON '
        "(with `parameters`), bytes = the image file itself with its Content-Type (no parameters can go "
        "with it: the server's own top_k applies)",
    ),
    Option(
        "top_k",
        "int",
        None,
        min=1,
        max=1000,
        help="protocol hf-inference: parameters.top_k of each request (default: the number of classes, so "
        "every class gets its score and answers carry probabilities; fewer: the top label only)",
    ),
)
OPENAI_CHAT_OPTIONS = (
    Option(
        "prompt",
        "str",
        "Which one of these classes does the image show: {classes}? Answer with the class name only.",
        help="protocol openai-chat: the text beside the image; {classes} becomes the class names, "
        "comma-separated, in label-space order",
    ),
    Option(
        "fallback",
        "str",
        "contains",
        choices=("contains", "none"),
        help="protocol openai-chat: an answer that is not a class name (exactly or ignoring case, spaces "
        "and punctuation): contains = the one class name the text contains as whole words; none = "
        "unparseable. Unparseable answers are label -1 (not answered), counted in the report",
    ),
    Option(
        "constrain",
        "str",
        "none",
        choices=("none", "guided_choice", "json_schema"),
        help="protocol openai-chat: make the server answer a class name, where it supports it: "
        "guided_choice (vLLM's extra parameter) or json_schema (response_format with an enum of the "
        "classes: OpenAI structured outputs, vLLM, SGLang)",
    ),
    Option(
        "logprobs",
        "bool",
        False,
        help="protocol openai-chat: ask for logprobs and read the class token's top_logprobs as "
        "probabilities (for servers that offer them)",
    ),
    Option(
        "top_logprobs",
        "int",
        None,
        min=1,
        max=20,
        help="protocol openai-chat with logprobs: alternatives per token (default: the number of classes, "
        "at most 20, OpenAI's limit)",
    ),
    Option("max_tokens", "int", 32, min=1, help="protocol openai-chat: the longest answer, in tokens"),
    Option(
        "temperature",
        "float",
        0.0,
        min=0.0,
        max=2.0,
        help="protocol openai-chat: sampling temperature (0: the same image gets the same answer)",
    ),
    Option(
        "cost",
        "str",
        "requests",
        choices=("requests", "tokens"),
        help="protocol openai-chat: what `budget` counts: requests (one image each) or tokens (each "
        "response's usage.total_tokens, over all runs)",
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
        choices=("v2", "json", "hf-inference", "openai-chat"),
        help="v2: the Open Inference Protocol (KServe, Triton, MLServer); json: any JSON API described by "
        "the protocol-json keys; hf-inference: Hugging Face Inference image classification (one image a "
        "request, [{label, score}] back); openai-chat: an OpenAI-compatible chat-completions API asked "
        "in words (a vision-language model)",
    ),
    LABEL_NAMES,
    OUTPUT_KIND,
    *HTTP_V2_OPTIONS,
    *HTTP_JSON_OPTIONS,
    *HF_INFERENCE_OPTIONS,
    *OPENAI_CHAT_OPTIONS,
    *PREPROCESSING_OPTIONS,
    Option(
        "token_env",
        "str",
        None,
        secret="env",
        help="name of the environment variable holding the API token (the token itself never goes in the "
        "audit file, the reports, the cache or any message)",
    ),
    Option("auth_header", "str", "Authorization", help="header that carries the token", check=not_blank),
    Option(
        "auth_scheme",
        "str",
        "Bearer",
        help='prefix of the token in that header ("" for APIs that take the bare key, e.g. x-api-key)',
    ),
    IMAGES_PER_REQUEST,
    Option("concurrency", "int", 4, min=1, max=1024, help="requests in flight at once"),
    Option(
        "timeout",
        "float",
        30.0,
        min=0,
        max=86_400,
        exclusive_min=True,
        help="seconds for one whole request: connecting, sending, and the whole response (at most 64 MiB)",
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
        help="most images this suspect may be sent, over all runs, retries included (answers are cached; "
        "default: no limit); openai-chat with cost = tokens: most tokens its answers may use",
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


def _named(options: tuple[Option, ...], *names: str) -> tuple[Option, ...]:
    return tuple(o for o in options if o.name in names)


STYLE_OPTIONS = {
    "v2": HTTP_V2_OPTIONS,
    "json": HTTP_JSON_OPTIONS,
    "hf-inference": HF_INFERENCE_OPTIONS + _named(HTTP_JSON_OPTIONS, "image_format", "jpeg_quality"),
    "openai-chat": (MODEL, *OPENAI_CHAT_OPTIONS, *_named(HTTP_JSON_OPTIONS, "image_format", "jpeg_quality")),
}
"""The keys that only some request styles read (`protocol`); set for another style they are an error."""
