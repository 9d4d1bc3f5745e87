import { readFileSync, readdirSync } from "node:fs";
import sharp from "sharp";
const dir = "/tmp/s1/assets/assets";
const files = readdirSync(dir).flatMap((d) => readdirSync(`${dir}/${d}`).map((f) => `${dir}/${d}/${f}`)).filter((f) => f.endsWith(".jpg"));
const imgs: Buffer[] = [];
for (const f of files) { const b = readFileSync(f); const m = await sharp(b).metadata(); if (m.width === 1600) imgs.push(b); }
async function t(name: string, fn: (b: Buffer) => Promise<unknown>) {
  for (let w = 0; w < 3; w++) await fn(imgs[w]!);
  const c0 = process.cpuUsage(); const t0 = performance.now(); let n = 0;
  for (let r = 0; r < 2; r++) for (const b of imgs) { await fn(b); n++; }
  const c = process.cpuUsage(c0);
  console.log(name.padEnd(28), "cpu ms", ((c.user + c.system) / 1000 / n).toFixed(2), "wall ms", ((performance.now() - t0) / n).toFixed(2));
}
console.log(sharp.versions, sharp.concurrency(), sharp.cache());
await t("decode raw", (b) => sharp(b, { failOn: "truncated" }).raw().toBuffer());
await t("decode raw seq=false", (b) => sharp(b, { failOn: "truncated", sequentialRead: false }).raw().toBuffer());
sharp.concurrency(1);
await t("decode raw conc1", (b) => sharp(b, { failOn: "truncated" }).raw().toBuffer());
sharp.concurrency(2);
sharp.cache(false);
await t("decode raw nocache", (b) => sharp(b, { failOn: "truncated" }).raw().toBuffer());
await t("decode greyscale", (b) => sharp(b, { failOn: "truncated" }).greyscale().raw().toBuffer());
await t("jpeg->jpeg", (b) => sharp(b).jpeg().toBuffer());
