"""The `openai-chat` request style: a vision-language model behind an OpenAI-compatible chat-completions
API (OpenAI, vLLM, SGLang, llama.cpp's server, LiteLLM ...), asked in words which class an image shows.

Each request is one user message: a text part (`prompt`, with `{classes}` replaced by the class names)
and an `image_url` part holding the image as a `data:` URL. The answer's text is read as one class:

1. the whole text is a class name, exactly or ignoring case, spaces and punctuation ("Ring.");
2. else, with `fallback = "contains"`, the one class name the text contains as whole words ("The image
   shows a ring."); a text naming two classes, or none, is not read as either;
3. else it is unparseable: the image counts as not answered (label -1), and the report says how many
   and quotes the commonest texts. Nothing is mapped by guesswork.

Where the server can constrain its answer, `constrain` asks it to: vLLM's `guided_choice`, or a
`response_format` JSON schema whose `label` is an enum of the classes. With `logprobs`, the
`top_logprobs` of the token where the class name starts become the answer's probabilities (each
alternative token counts for the one class whose name it begins). With `cost = "tokens"` the budget
counts each response's `usage.total_tokens` (`TokenLedger`).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import orjson

from trainprove_core import Answers, BudgetExceeded, ConfigError, Task

from .answers import AnswerError
from .hf_inference import NOT_ANSWERED, check_one_image
from .images import Preprocessing, encode_base64, requested_size
from .ledger import Ledger
from .names import NameIndex, normalise
from .transport import Transport, excerpt, read_json

JSON_SCHEMA_KEY = "label"


class TokenLedger(Ledger):
    """A ledger whose budget counts tokens (`usage.total_tokens` of each response, over all runs, kept in
    `usage.log` as `tokens N` lines) while images sent and paid are counted as always.

    A request's tokens are known only once it is answered, so a request goes out while the tokens
    counted so far, plus as many as the costliest answer yet, stay within the budget; with `concurrency`
    requests in flight the spending can pass the budget by at most that many answers' tokens."""

    def __init__(self, budget: int | None, label_space: Sequence[str]) -> None:
        super().__init__(None, label_space)
        self.token_budget = budget
        self.tokens = 0  # this run
        self.earlier_tokens = 0
        self.costliest = 0

    def _catch_up(self) -> None:
        super()._catch_up()
        self.earlier_tokens = self._totals.get("tokens", 0) - self.tokens

    @property
    def tokens_total(self) -> int:
        return self.earlier_tokens + self.tokens

    def _check(self, images: int, url: str) -> None:
        if self.token_budget is not None and self.tokens_total + self.costliest > self.token_budget:
            raise BudgetExceeded(
                f"suspect endpoint {url}: {self.tokens_total} tokens were used over all runs "
                f"({self.tokens} in this run), and the next answer may take {self.costliest} more, over "
                f"the budget of {self.token_budget} tokens (cost = 'tokens'). Nothing more was sent; "
                "every answer received is kept, so raising `budget` goes on where this stopped."
            )

    def spend(self, tokens: int) -> None:
        """Count the tokens an answer used."""
        with self._lock:
            self.tokens += tokens
            self.costliest = max(self.costliest, tokens)
            self._log("tokens", tokens)


class OpenAIChatProtocol:
    """`POST {url}` (the chat-completions endpoint) with one image; the answer's text read as a class."""

    images_per_request = 1

    def __init__(self, settings: Mapping[str, Any], task: Task, label_space: Sequence[str]) -> None:
        check_one_image(settings, "openai-chat")
        if not settings["model"]:
            raise ConfigError(
                "key 'model' is required with protocol = 'openai-chat' (the request's `model`)", key="model"
            )
        if "{classes}" not in settings["prompt"]:
            raise ConfigError(
                "key 'prompt' must contain {classes}, where the class names go (the model cannot name a "
                "class it was not told of)",
                key="prompt",
            )
        if settings["top_logprobs"] is not None and not settings["logprobs"]:
            raise ConfigError("key 'top_logprobs' needs logprobs = true", key="top_logprobs")
        if settings["output_kind"] == "probabilities" and not settings["logprobs"]:
            raise ConfigError(
                "key 'output_kind': an answer in words has probabilities only through logprobs; set "
                "logprobs = true (if the server offers them)",
                key="output_kind",
            )
        self.url = settings["url"]
        self.settings = settings
        self.names = list(label_space)
        self.index = NameIndex(self.names, punctuation=True)
        self.prefixes = [normalise(name, True) for name in self.names]
        self.text = settings["prompt"].replace("{classes}", ", ".join(self.names))
        self.constrain: str = settings["constrain"]
        self.logprobs: bool = settings["logprobs"]
        self.top_logprobs = settings["top_logprobs"] or min(20, len(self.names))
        self.returns: Literal["labels", "probabilities"] = "probabilities" if self.logprobs else "labels"
        self.ledger = TokenLedger(settings["budget"], self.names) if settings["cost"] == "tokens" else None
        self.preprocessing = Preprocessing.from_settings(
            settings, requested_size(settings["resize"], task.image_size)
        )
        self._lock = threading.Lock()
        self.answered = 0
        self.unparseable: Counter[str] = Counter()  # the texts, as answered
        self.by_fallback = 0
        self.unplaced = 0  # answers whose logprobs said nothing of the class named
        self.tokens = 0

    def identity(self) -> dict[str, Any]:
        s = self.settings
        return {
            "protocol": "openai-chat",
            "url": self.url,
            "model": s["model"],
            "prompt": self.text,
            "fallback": s["fallback"],
            "constrain": self.constrain,
            "logprobs": self.top_logprobs if self.logprobs else None,
            "max_tokens": s["max_tokens"],
            "temperature": s["temperature"],
            "image_format": s["image_format"],
            "jpeg_quality": s["jpeg_quality"] if s["image_format"] == "jpeg" else None,
        }

    def prepare(self, transport: Transport) -> None:
        """Nothing to learn from the server."""

    def encode(self, images: np.ndarray) -> tuple[bytes, dict[str, str]]:
        s = self.settings
        (url,) = encode_base64(self.preprocessing.pixels(images), s["image_format"], s["jpeg_quality"], True)
        content = [{"type": "text", "text": self.text}, {"type": "image_url", "image_url": {"url": url}}]
        body: dict[str, Any] = {
            "model": s["model"],
            "messages": [{"role": "user", "content": content}],
            "max_tokens": s["max_tokens"],
            "temperature": s["temperature"],
        }
        if self.constrain == "guided_choice":
            body["guided_choice"] = self.names
        elif self.constrain == "json_schema":
            schema = {
                "type": "object",
                "properties": {JSON_SCHEMA_KEY: {"type": "string", "enum": self.names}},
                "required": [JSON_SCHEMA_KEY],
                "additionalProperties": False,
            }
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "classification", "strict": True, "schema": schema},
            }
        if self.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        return orjson.dumps(body), {"Content-Type": "application/json"}

    def read(self, content: bytearray, headers: Mapping[str, str]) -> Any:
        return read_json(content)

    def decode(self, document: Any, count: int) -> Answers:
        choices = document.get("choices") if isinstance(document, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise AnswerError(f"the response has no `choices` (got {excerpt(repr(document), 120)})")
        tokens = self._count_tokens(document)
        message = choices[0].get("message")
        text = message_text(message.get("content") if isinstance(message, dict) else None)
        parsed = self.parse(text) if text is not None else None
        probabilities = None
        unplaced = False
        if self.logprobs:
            logprobs = choices[0].get("logprobs")
            steps = logprobs.get("content") if isinstance(logprobs, dict) else None
            if not isinstance(steps, list):
                raise AnswerError(
                    "the answer has no `logprobs.content` although logprobs were asked for: this server does "
                    "not offer them; set logprobs = false"
                )
            row = None if parsed is None else self.class_probabilities(text or "", parsed[1], steps)
            unplaced = parsed is not None and row is None
            if row is None:
                # Not answered: any row (tests read answered images only). Unplaced: the model named
                # this class, its logprobs no alternative to it.
                row = np.full(len(self.names), 1.0 / len(self.names))
                if parsed is not None:
                    row = np.eye(len(self.names))[parsed[0]]
            probabilities = row[None].astype(np.float32)
        with self._lock:
            self.answered += 1
            self.tokens += tokens or 0
            self.unplaced += unplaced
            if parsed is None:
                self.unparseable[text if text is not None else "(no text)"] += 1
            elif parsed[2]:
                self.by_fallback += 1
        label = NOT_ANSWERED if parsed is None else parsed[0]
        return Answers(np.array([label], dtype=np.int64), probabilities)

    def _count_tokens(self, document: dict[str, Any]) -> int | None:
        usage = document.get("usage")
        total = usage.get("total_tokens") if isinstance(usage, dict) else None
        valid = isinstance(total, int) and not isinstance(total, bool) and total >= 0
        if self.ledger is None:
            return total if valid else None
        if not valid:
            raise AnswerError(
                "cost = 'tokens', but the response has no `usage.total_tokens` to count "
                f"(got usage = {excerpt(repr(usage), 80)}); set cost = 'requests'"
            )
        self.ledger.spend(total)
        return total

    def parse(self, text: str) -> tuple[int, int, bool] | None:
        """The class `text` names, where in `text` its name starts, and whether the fallback read it; None
        when it names no class (or more than one)."""
        if self.constrain == "json_schema":
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                value = None
            if isinstance(value, dict) and isinstance(value.get(JSON_SCHEMA_KEY), str):
                inner = value[JSON_SCHEMA_KEY]
                i = self.index.find(inner)
                if i is not None:
                    return i, max(0, text.rfind(orjson.dumps(inner).decode()) + 1), False
        stripped = text.strip()
        i = self.index.find(stripped)
        if i is not None:
            return i, len(text) - len(text.lstrip()), False
        if self.settings["fallback"] == "contains":
            found = self.index.mentioned(text)
            if len({c for c, _ in found}) == 1:
                return found[0][0], found[0][1], True
        return None

    def class_probabilities(self, text: str, start: int, steps: list[Any]) -> np.ndarray | None:
        """Class probabilities from the top_logprobs of the token where the class name starts at `start` of
        `text`; None when the tokens do not spell `text` there or no alternative begins a class name."""
        offset = 0
        for step in steps:
            token = step.get("token") if isinstance(step, dict) else None
            if not isinstance(token, str):
                return None
            if text[offset : offset + len(token)] != token:
                return None
            if offset + len(token) > start:
                if text[offset:start].strip(" \t\n\"'"):
                    return None  # the name starts inside a word-piece: no alternative is a class
                return self._mass(step.get("top_logprobs"))
            offset += len(token)
        return None

    def _mass(self, alternatives: Any) -> np.ndarray | None:
        if not isinstance(alternatives, list):
            return None
        mass = np.zeros(len(self.names))
        for alternative in alternatives:
            token = alternative.get("token") if isinstance(alternative, dict) else None
            logprob = alternative.get("logprob") if isinstance(alternative, dict) else None
            if not isinstance(token, str) or not isinstance(logprob, int | float):
                continue
            if not math.isfinite(logprob):
                continue
            piece = normalise(token, True)
            if not piece:
                continue
            begun = [c for c, name in enumerate(self.prefixes) if name.startswith(piece)]
            if len(begun) == 1:
                mass[begun[0]] += math.exp(logprob)
        total = mass.sum()
        return mass / total if total > 0 else None

    @property
    def remarks(self) -> list[str]:
        """Unparseable answers, answers read by the fallback, logprobs that named no class, tokens."""
        with self._lock:
            out = []
            if self.unparseable:
                n = sum(self.unparseable.values())
                shown = "; ".join(f"{excerpt(t, 60)} x{k}" for t, k in self.unparseable.most_common(3))
                out.append(
                    f"{n} of {self.answered} answers named no class, or more than one, and count as not "
                    f"answered (label -1): {shown}"
                )
            if self.by_fallback:
                out.append(
                    f"{self.by_fallback} of {self.answered} answers were read by the fallback (the one class "
                    "name the text contains)"
                )
            if self.unplaced:
                out.append(
                    f"{self.unplaced} answers' logprobs offered no alternative at the class name: their "
                    "probabilities put all mass on the class the text names"
                )
            if self.tokens:
                total = f", {self.ledger.tokens_total} over all runs" if self.ledger is not None else ""
                out.append(f"{self.tokens} tokens used in this run (usage.total_tokens){total}")
            return out


def message_text(content: Any) -> str | None:
    """A message's text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if parts and all(isinstance(p, str) for p in parts):
            return "".join(parts)
    return None
