# smserve: a SageMaker-compatible XGBoost serving image, for linux/amd64 and
# linux/arm64 from this one file (docker buildx build --platform linux/amd64,linux/arm64 .).
# Build stage: compiler, cmake, the -dev packages and the pinned XGBoost runtime
# (scripts/xgboost-runtime.sh: the xgboost-cpu wheel's library for this architecture,
# verified against scripts/xgboost-runtime.pin). Runtime stage: the stripped binary
# and the shared libraries it links, nothing else (no compiler, no python, no apt
# lists). scripts/container.sh builds and tests it with podman.
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
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DBUILD_BENCH=OFF \
      -DXGBOOST_ROOT=/opt/smserve/xgboost \
 && cmake --build build -j"$(nproc)" --target smserve \
 && install -D -s -m 0755 build/smserve /out/smserve \
 && /out/smserve --version

FROM debian:bookworm-slim
# libxgboost.so (from the wheel, with its own OpenMP runtime) needs libstdc++6;
# libarchive13 brings libxml2 (and ICU), zlib, lzma, bz2, zstd, lz4, acl, nettle.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcivetweb1 libarchive13 libjansson4 libstdc++6 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && mkdir -p /opt/ml/model
COPY --from=build /opt/smserve/xgboost/xgboost/lib /opt/smserve/xgboost/xgboost/lib
COPY --from=build /opt/smserve/xgboost/xgboost_cpu.libs /opt/smserve/xgboost/xgboost_cpu.libs
COPY --from=build /out/smserve /usr/local/bin/smserve
# The sample model, for a first run: docker run -e SM_MODEL_DIR=/opt/smserve/sample IMAGE.
# /opt/ml/model stays empty, so an image started without a model says so instead of
# quietly serving the sample; SageMaker (or -v DIR:/opt/ml/model) puts the model there.
COPY models/sample /opt/smserve/sample
# Parallelism comes from smserve's workers; XGBoost predicts with one thread.
ENV SM_MODEL_DIR=/opt/ml/model OMP_NUM_THREADS=1
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/smserve"]
CMD ["serve"]
