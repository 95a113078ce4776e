# smserve: a SageMaker-compatible XGBoost serving container.
# Build stage: compilers and -dev packages. Runtime stage: the binary and the
# shared libraries it links, nothing else.
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libcivetweb-dev libxgboost-dev libarchive-dev libopenblas-dev libjansson-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include include
COPY server server
COPY models models
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
 && cmake --build build -j"$(nproc)" --target smserve \
 && strip build/smserve

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcivetweb1 libxgboost0 libarchive13 libopenblas0-pthread libjansson4 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
COPY --from=build /src/build/smserve /usr/local/bin/smserve
COPY --from=build /src/models/sample /opt/ml/model
ENV SM_MODEL_DIR=/opt/ml/model OMP_NUM_THREADS=1
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/smserve"]
CMD ["serve"]
