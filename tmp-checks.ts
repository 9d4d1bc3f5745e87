import { readFileSync, readdirSync } from "node:fs";
import sharp from "sharp";
import { runChecks } from "./src/pipeline/checks.js";
const dir = "/tmp/s1/assets/assets";
const files = readdirSync(dir).flatMap((d) => readdirSync(`${dir}/${d}`).map((f) => `${dir}/${d}/${f}`)).filter((f) => f.endsWith(".jpg"));
const imgs = [];
for (const f of files) { const b = readFileSync(f); const m = await sharp(b).metadata(); if (m.width === 1600 && m.height === 1600) imgs.push(b); }
const refs = readdirSync("/tmp/s1/assets/references").flatMap((d) => readdirSync(`/tmp/s1/assets/references/${d}`).map((f) => readFileSync(`/tmp/s1/assets/references/${d}/${f}`)));
console.log(imgs.length, "heroes-size images", refs.length, "refs");
const out = { width: 1600, height: 1600, format: "jpeg" as const };
async function t(name: string, fn: (b: Buffer, i: number) => Promise<unknown>) {
  for (let w = 0; w < 3; w++) await fn(imgs[w]!, w);
  const c0 = process.cpuUsage(); const t0 = performance.now(); let n = 0;
  for (let r = 0; r < 2; r++) for (let i = 0; i < imgs.length; i++) { await fn(imgs[i]!, i); n++; }
  const c = process.cpuUsage(c0);
  console.log(name.padEnd(28), "cpu ms", ((c.user + c.system) / 1000 / n).toFixed(2), "wall ms", ((performance.now() - t0) / n).toFixed(2));
}
await t("metadata", (b) => sharp(b).metadata());
await t("decode raw", (b) => sharp(b, { failOn: "truncated" }).raw().toBuffer());
await t("decode shrink2", (b) => sharp(b, { failOn: "truncated" }).resize(800).raw().toBuffer());
await t("decodes+size only", (b) => runChecks(b, {}, out));
await t("+whiteBorder", (b) => runChecks(b, { whiteBorder: { minValue: 250 } }, out));
await t("+fill", (b) => runChecks(b, { fill: { min: 0.8, max: 0.95 } }, out));
await t("+blur", (b) => runChecks(b, { blur: { max: 0.6 } }, out));
await t("+notInput", (b, i) => runChecks(b, { notInput: true }, out, refs[i % refs.length]));
await t("full hero spec", (b, i) => runChecks(b, { whiteBorder: { minValue: 250 }, fill: { min: 0.8, max: 0.95 }, notBlank: { minStdDev: 4 }, notInput: true, blur: { max: 0.6 } }, out, refs[i % refs.length]));
