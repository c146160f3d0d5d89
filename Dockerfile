# trainprove on the CPU: the core, every plugin, and torch's CPU-only build (no CUDA libraries).
#
#   docker build -t trainprove .                          # --build-arg EXTRAS=audit,suspects for fewer plugins
#   docker run --rm -v "$PWD:/work" -v trainprove-store:/store trainprove audit audit.toml --out runs/vendor
#
# Paths in the audit file are relative to it, so mount the folder that holds it and its suspects at /work.
# The store (every cached image set, model and answer) is the volume at /store: keep it between runs.

FROM python:3.11-slim AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY trainprove trainprove
COPY trainprove_core trainprove_core
COPY plugins plugins
RUN pip wheel --no-cache-dir --no-deps -w /dist . plugins/*/

FROM python:3.11-slim
ARG TORCH="torch==2.14.1 torchvision==0.29.1"
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG EXTRAS=all
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX" $TORCH \
 && python -c "import importlib.metadata as m; print('\n'.join(f'{d}=={m.version(d)}' for d in ('torch', 'torchvision')))" \
    > /etc/keep-torch.txt
COPY --from=wheels /dist /dist
# The constraint keeps the CPU torch: every plugin asks for torch as a lower bound only.
RUN pip install --no-cache-dir -c /etc/keep-torch.txt --find-links /dist "trainprove[$EXTRAS]" \
 && trainprove plugins
ENV TRAINPROVE_STORE=/store
VOLUME /store
WORKDIR /work
ENTRYPOINT ["trainprove"]
CMD ["--help"]
