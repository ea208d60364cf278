// Build step: parses proto/clusterd.proto once and writes its protobufjs JSON descriptor next to it
// (proto/clusterd.json, git-ignored). At run time src/control/proto.ts loads that JSON with
// protobufjs/light: no .proto parser, and no @grpc/proto-loader, which together cost a CLI
// command about 90 ms of start-up on Node 20 (BENCHMARKS.md, "clusterd status").
import fs from 'node:fs';
import protobuf from 'protobufjs';

const source = new URL('../proto/clusterd.proto', import.meta.url);
const target = new URL('../proto/clusterd.json', import.meta.url);
// keepCase false: snake_case fields become camelCase properties, as the code expects.
const root = new protobuf.Root().loadSync(source.pathname, { keepCase: false });
root.resolveAll();
fs.writeFileSync(target, `${JSON.stringify(root.toJSON())}\n`);
