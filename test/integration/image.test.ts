import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:http";
import { join, posix, resolve } from "node:path";
import { before, describe, it } from "node:test";
import { validate } from "dockerfile-utils";
import { parse } from "yaml";
import { ROLE_NODE_FLAGS } from "../../src/lib/roles.ts";

/**
 * The container image, without a container engine: these machines reach no container registry, so
 * no base image can be pulled and buildah/podman (both in Debian) have nothing to build on. Instead
 * the Dockerfile is linted with dockerfile-utils (the parser behind VS Code's Dockerfile support),
 * its shape is checked, and every path it copies must exist after `npm run build`.
 */
/** LSP's DiagnosticSeverity (vscode-languageserver-types), which dockerfile-utils reports in but does not export. */
const ERROR = 1;
const WARNING = 2;

interface Instruction {
  keyword: string;
  args: string;
  stage: number;
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped, each with its stage (0-based). */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!pending && (line === "" || line.startsWith("#"))) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = "";
    const keyword = full.split(/\s/, 1)[0]!.toUpperCase();
    if (keyword === "FROM") stage++;
    out.push({ keyword, args: full.slice(keyword.length).trim(), stage });
  }
  return out;
}

/** COPY's flags and its sources (the last word is the destination); JSON form too. */
function copyParts(args: string): { flags: Record<string, string>; sources: string[] } {
  const words = args.startsWith("[") ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags: Record<string, string> = {};
  while (words[0]?.startsWith("--")) {
    const [k, v] = words.shift()!.slice(2).split("=");
    flags[k!] = v ?? "";
  }
  return { flags, sources: words.slice(0, -1) };
}

/** .dockerignore's patterns as a test: a path is left out of the build context by `name`, `dir/...` or `** /name` (no negations here). */
function ignoredBy(patterns: string[], path: string): string | undefined {
  const segments = path.split("/");
  return patterns.find((p) => {
    if (p.startsWith("**/")) return segments.includes(p.slice(3));
    if (p.includes("*")) return new RegExp(`^${p.replace(/\./g, "\\.").replace(/\*/g, "[^/]*")}$`).test(segments[0]!);
    return path === p || path.startsWith(`${p}/`);
  });
}

describe("the container image (Dockerfile)", () => {
  const text = readFileSync("Dockerfile", "utf8");
  const all = instructions(text);
  const last = Math.max(...all.map((i) => i.stage));
  const runtime = all.filter((i) => i.stage === last);
  const one = (keyword: string) => {
    const found = runtime.filter((i) => i.keyword === keyword);
    assert.equal(found.length, 1, `one ${keyword} in the runtime stage`);
    return found[0]!.args;
  };

  before(() => {
    // Self-sufficient: the paths COPY names under dist/ exist only after a build.
    execFileSync("bash", ["src/dev/bin/build.sh"], { stdio: ["ignore", "ignore", "pipe"], timeout: 120_000 });
  });

  it("lints clean with dockerfile-utils: no error and no warning (and a broken Dockerfile does not)", () => {
    const problems = validate(text).map(
      (d) => `${d.severity === ERROR ? "error" : "warning"} line ${d.range.start.line + 1}: ${d.message}`,
    );
    assert.deepEqual(problems, []);
    const broken = text.replace("HEALTHCHECK --interval=10s", "HEALTHCHECK --interval=ten").replace("USER node", "user node\nUSER");
    const found = validate(broken);
    assert.ok(
      found.some((d) => d.severity === ERROR),
      "the linter can fail",
    );
    assert.ok(
      found.some((d) => d.severity === WARNING),
      "and warn",
    );
  });

  it("is multi-stage: a build stage runs npm run build, the slim runtime installs production dependencies only and copies dist", () => {
    const froms = all.filter((i) => i.keyword === "FROM").map((i) => i.args);
    assert.ok(froms.length >= 2, froms.join());
    assert.match(froms[0]!, /^node:20-bookworm-slim AS build$/i);
    assert.match(froms.at(-1)!, /^node:20-bookworm-slim\b/);
    assert.ok(
      all.some((i) => i.stage < last && i.keyword === "RUN" && /\bnpm run build\b/.test(i.args)),
      "the build stage builds",
    );
    const runs = runtime.filter((i) => i.keyword === "RUN").map((i) => i.args);
    assert.ok(
      runs.some((r) => /\bnpm ci\b.*--omit=dev/.test(r)),
      runs.join("\n"),
    );
    assert.ok(!runs.some((r) => /npm run build|\btsc\b|\btsx\b/.test(r)), "the runtime stage compiles nothing");
    assert.ok(runtime.some((i) => i.keyword === "COPY" && /^--from=build \/app\/dist \.\/dist$/.test(i.args)));
  });

  it("runs as a non-root user, node as the entrypoint, every role by command (default all), with a HEALTHCHECK on /readyz", () => {
    const user = one("USER");
    assert.ok(!["root", "0", "0:0"].includes(user), user);
    const userAt = runtime.findIndex((i) => i.keyword === "USER");
    assert.ok(!runtime.slice(userAt).some((i) => i.keyword === "RUN"), "nothing runs as root after USER");
    assert.deepEqual(JSON.parse(one("ENTRYPOINT")), ["node", ...ROLE_NODE_FLAGS]);
    assert.deepEqual(JSON.parse(one("CMD")), ["dist/workers/all.js"]);
    assert.match(one("HEALTHCHECK"), /\/readyz/);
  });

  it("npm start runs node with the role flags the image's entrypoint has (its exec processes inherit them)", () => {
    const line = readFileSync("src/dev/bin/start.sh", "utf8")
      .split("\n")
      .find((l) => /^exec node /.test(l));
    assert.deepEqual(line?.split(" ").slice(2, 2 + ROLE_NODE_FLAGS.length), [...ROLE_NODE_FLAGS], line);
  });

  it("copies only paths that exist after npm run build and that .dockerignore lets into the build context", () => {
    const ignore = readFileSync(".dockerignore", "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    const workdirOf = (stage: number) => all.filter((i) => i.stage === stage && i.keyword === "WORKDIR").at(-1)?.args ?? "/";
    const stageIndex = new Map(
      all.filter((i) => i.keyword === "FROM").map((i) => [/\bAS\s+(\S+)$/i.exec(i.args)?.[1]?.toLowerCase(), i.stage] as const),
    );
    const copies = all.filter((i) => i.keyword === "COPY" || i.keyword === "ADD");
    assert.ok(copies.length > 0);
    for (const c of copies) {
      const { flags, sources } = copyParts(c.args);
      assert.ok(sources.length > 0, c.args);
      for (const src of sources) {
        if (flags.from !== undefined) {
          // From the build stage, which built a copy of this repository in its WORKDIR: the same path here.
          const from = stageIndex.get(flags.from.toLowerCase());
          assert.notEqual(from, undefined, `unknown stage in ${c.args}`);
          const inRepo = posix.relative(workdirOf(from!), posix.resolve(workdirOf(from!), src));
          assert.ok(!inRepo.startsWith(".."), `${src} is outside the build stage's WORKDIR`);
          assert.ok(existsSync(inRepo), `${c.args}: ${inRepo} does not exist after npm run build`);
        } else {
          assert.ok(existsSync(src), `${c.args}: ${src} does not exist`);
          assert.equal(ignoredBy(ignore, posix.normalize(src)), undefined, `${c.args}: ${src} is excluded by .dockerignore`);
        }
      }
    }
  });

  it("builds from the build stage's context alone: only what its COPYs bring, minus .dockerignore", { timeout: 180_000 }, () => {
    // What `docker build` would see: each build-stage COPY source, without ignored paths (dist, node_modules);
    // node_modules linked in place of the stage's `npm ci`. A source the build imports but the Dockerfile does
    // not copy (the client package once) fails here instead of in the first real image build.
    const dir = mkdtempSync(join(tmpdir(), "fl-image-"));
    try {
      for (const c of all.filter((i) => i.stage === 0 && i.keyword === "COPY")) {
        for (const src of copyParts(c.args).sources) {
          mkdirSync(join(dir, posix.dirname(src)), { recursive: true });
          execFileSync("cp", ["-rp", src, join(dir, posix.dirname(src))]);
        }
      }
      execFileSync(
        "bash",
        ["-c", "find . -path ./node_modules -prune -o \\( -name dist -o -name node_modules \\) -type d -prune -exec rm -rf {} +"],
        { cwd: dir },
      );
      symlinkSync(resolve("node_modules"), join(dir, "node_modules"));
      execFileSync("bash", ["src/dev/bin/build.sh"], { cwd: dir, env: { ...process.env, REDIS_URL: "redis://unused" }, stdio: "pipe" });
      for (const f of ["dist/workers/all.js", "dist/src/cli/index.js", "packages/client/dist/index.js"])
        assert.ok(existsSync(join(dir, f)), f);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("has, after npm run build, every entrypoint the image and docker-compose.yml run", () => {
    const compose = parse(readFileSync("docker-compose.yml", "utf8"), { merge: true }) as {
      services: Record<string, { image?: string; command?: string[] }>;
    };
    const entries = [JSON.parse(one("CMD"))[0] as string];
    for (const [name, svc] of Object.entries(compose.services)) {
      if (name === "redis") continue;
      assert.match(svc.image ?? "", /^fairlane:/, `${name} runs this image`);
      entries.push(svc.command![0]!);
    }
    for (const e of entries) assert.ok(existsSync(e), e);
  });

  it("the HEALTHCHECK command passes on a 200 from /readyz and fails on a 503 or no answer", async () => {
    const [form, ...cmd] = JSON.parse(one("HEALTHCHECK").replace(/^(--\S+\s+)*CMD\s+/, "")) as string[];
    assert.equal(form, "node", "exec form: slim has no shell tools to spare and no curl");
    let status = 200;
    const server = createServer((req, res) => res.writeHead(req.url === "/readyz" ? status : 404).end());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = String((server.address() as { port: number }).port);
    const check = (env: Record<string, string>) =>
      new Promise<number | null>((resolve) =>
        spawn(process.execPath, cmd, { env: { ...process.env, ...env }, stdio: "ignore" }).once("exit", resolve),
      );
    try {
      assert.equal(await check({ PORT: port }), 0);
      status = 503;
      assert.equal(await check({ PORT: port }), 1);
    } finally {
      await new Promise((r) => server.close(r));
    }
    assert.equal(await check({ PORT: port }), 1, "nobody listening");
  });
});
