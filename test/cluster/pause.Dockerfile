# The pod sandbox image that the test cluster's containerd names (sandbox_image): the static program of
# test/cluster/go/pause, built into .tools/cluster/bin by `npm run setup`. Assembled by images.ts like the others.
FROM scratch
COPY --chmod=0555 .tools/cluster/bin/pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
