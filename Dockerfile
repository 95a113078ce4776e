# smserve: a SageMaker-compatible XGBoost serving image, for linux/amd64 and
# linux/arm64 from this one file (docker buildx build --platform linux/amd64,linux/arm64 .).
# Build stage: compiler, cmake, the -dev packages and the pinned XGBoost runtime
# (scripts/xgboost-runtime.sh: the xgboost-cpu wheel's library for this architecture,
# verified against scripts/xgboost-runtime.pin). Runtime stage: an empty base with the
# stripped binary and exactly the shared libraries it loads, with their copyright
# files (scripts/image-rootfs.sh), nothing else: no shell, no package manager.
# scripts/container.sh builds and tests it with podman.
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config binutils python3 python3-pip ca-certificates \
      libcivetweb-dev libarchive-dev libjansson-dev libopenblas-dev libcmocka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/xgboost-runtime.sh scripts/xgboost-runtime.pin scripts/
# The runtime lives at the same path in both stages: smserve's RUNPATH points there.
# (A build may mount a directory of already verified downloads at
# /root/.cache/smserve/downloads; scripts/container.sh does.)
# The wheel's library carries its symbol table (5 MB); the image does not need it.
RUN scripts/xgboost-runtime.sh >/tmp/prefix \
 && mkdir -p /opt/smserve && cp -a "$(cat /tmp/prefix)" /opt/smserve/xgboost \
 && rm -rf "$(cat /tmp/prefix)" \
 && strip --strip-unneeded /opt/smserve/xgboost/xgboost/lib/libxgboost.so
COPY CMakeLists.txt ./
COPY include include
COPY server server
COPY scripts/image-rootfs.sh scripts/
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DBUILD_BENCH=OFF \
      -DXGBOOST_ROOT=/opt/smserve/xgboost \
 && cmake --build build -j"$(nproc)" --target smserve \
 && install -D -s -m 0755 build/smserve /out/smserve \
 && /out/smserve --version \
 && scripts/image-rootfs.sh /out/smserve /rootfs /opt/smserve/xgboost

FROM scratch
COPY --from=build /rootfs /
# The sample model, for a first run: docker run -e SM_MODEL_DIR=/opt/smserve/sample IMAGE.
# /opt/ml/model stays empty, so an image started without a model says so instead of
# quietly serving the sample; SageMaker (or -v DIR:/opt/ml/model) puts the model there.
COPY models/sample /opt/smserve/sample
# Parallelism comes from smserve's workers; XGBoost predicts with one thread.
ENV SM_MODEL_DIR=/opt/ml/model OMP_NUM_THREADS=1
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
LABEL com.amazonaws.sagemaker.capabilities.multi-models=true
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/smserve"]
CMD ["serve"]
