# embtune's SageMaker image: `docker run IMAGE train` is the training
# container, `docker run IMAGE serve` the inference container.
#
# UNTESTED: no Docker engine was available where this was written. The entry
# points it runs (`embtune train` with no arguments, `embtune serve`) are
# tested directly against a temp /opt/ml tree (see README).
#
# CPU image. For a GPU image, build FROM an image with a CUDA torch and set
# EMBTUNE_CUDA=1 so that libtorch_cuda is linked (see README, "GPU").

FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        g++ make unzip binutils python3 python3-pip ca-certificates libtcmalloc-minimal4 libgloo-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# libtorch goes where the final image keeps it, so the binary's rpath is right.
RUN PYTHON=python3 tools/fetch-libtorch.sh \
    && mkdir -p /opt/embtune && mv third_party/libtorch /opt/embtune/libtorch \
    && tools/fetch-model.sh \
    && LIBTORCH=/opt/embtune/libtorch tools/libtorch-env.sh > third_party/libtorch.mk \
    && make bin/embtune

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 libtcmalloc-minimal4 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/embtune/libtorch/lib /opt/embtune/libtorch/lib
COPY --from=build /src/third_party/models/all-MiniLM-L6-v2 /opt/embtune/models/all-MiniLM-L6-v2
COPY --from=build /src/bin/embtune /usr/local/bin/embtune
ENV EMBTUNE_BASE_MODEL=/opt/embtune/models/all-MiniLM-L6-v2
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/embtune"]
CMD ["serve"]
