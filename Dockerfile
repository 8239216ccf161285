# embtune's SageMaker image: `docker run IMAGE train` is the training
# container, `docker run IMAGE serve` the inference container.
#
# Built and run here by `make image-test` (tools/image-test.sh) with buildah
# (vfs storage, chroot isolation), with BASE_IMAGE a Debian bookworm root
# filesystem made by mmdebstrap and ARTIFACTS=prebuilt (the binary built on
# the host), since no image registry is reachable there. The `build` stage
# (the default) has not been built there: it needs golang:1.26-bookworm.
#
# CPU image. For a GPU image, build FROM an image with a CUDA torch and set
# EMBTUNE_CUDA=1 so that libtorch_cuda is linked (see README, "GPU").

# The final image's base: debian:bookworm-slim, or any bookworm root.
ARG BASE_IMAGE=debian:bookworm-slim
# Where the binary, libtorch and the model come from: the `build` stage, or
# `prebuilt`, which takes them from the build context's image-root/ folder
# laid out as /out below (tools/image-test.sh stages it).
ARG ARTIFACTS=build

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
    && make bin/embtune \
    && mkdir -p /out/opt/embtune/libtorch /out/opt/embtune/models /out/usr/local/bin \
    && cp -a /opt/embtune/libtorch/lib /out/opt/embtune/libtorch/lib \
    && cp -a third_party/models/all-MiniLM-L6-v2 /out/opt/embtune/models/all-MiniLM-L6-v2 \
    && cp bin/embtune /out/usr/local/bin/embtune

FROM scratch AS prebuilt
COPY image-root/ /out/

FROM ${ARTIFACTS} AS artifacts

FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 libtcmalloc-minimal4 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=artifacts /out/opt/embtune/libtorch/lib /opt/embtune/libtorch/lib
COPY --from=artifacts /out/opt/embtune/models/all-MiniLM-L6-v2 /opt/embtune/models/all-MiniLM-L6-v2
COPY --from=artifacts /out/usr/local/bin/embtune /usr/local/bin/embtune
ENV EMBTUNE_BASE_MODEL=/opt/embtune/models/all-MiniLM-L6-v2
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/embtune"]
CMD ["serve"]
