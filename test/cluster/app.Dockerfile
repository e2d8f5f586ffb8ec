# The stand-in app of the pod-level tests (devkit/apps/reader.ts) as an image, so pods of the test cluster run
# the app the pod runner runs. Node strips the TypeScript types itself, so the sources are the app; what they
# import must be copied with them (app.Dockerfile.dockerignore lets in nothing else). From the repository root:
#   docker build -f test/cluster/app.Dockerfile -t sidekey.test/app:1 .
FROM gcr.io/distroless/nodejs24-debian13:nonroot
COPY --chmod=0444 devkit/apps/reader.ts devkit/apps/secrets-dir.ts /app/
# The base's entrypoint is node; a pod's env (APP_SECRETS_DIR, APP_PORT, APP_HOST, …) configures the app.
CMD ["/app/reader.ts"]
