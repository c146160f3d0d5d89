"""A custom MLServer runtime: a timm checkpoint (config.json + model.safetensors) on normalised NCHW float
images, answering logits. The MLServer test copies it into the model's folder, where MLServer imports it
(`"implementation": "timm_runtime.TimmRuntime"`)."""

import json
from pathlib import Path

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class TimmRuntime(MLModel):
    async def load(self) -> bool:
        import timm
        import torch
        from safetensors.torch import load_file

        torch.set_num_threads(1)
        folder = Path(self.settings.parameters.uri)
        config = json.loads((folder / "config.json").read_text())
        model = timm.create_model(config["architecture"], pretrained=False, num_classes=config["num_classes"])
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        self._model = model.eval()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        import torch

        x = np.ascontiguousarray(NumpyCodec.decode_input(payload.inputs[0]), dtype=np.float32)
        with torch.no_grad():
            logits = self._model(torch.from_numpy(x)).numpy()
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output("logits", logits)])
