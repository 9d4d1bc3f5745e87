/**
 * The body of a pixel thread (pixel-threads.ts): runs the pipeline's per-pixel JavaScript off
 * the process's event loop. Pixels arrive as a copy (structured clone) and the result's buffer
 * is moved back, not copied.
 */
import { Piscina } from "piscina";
import { type CutoutOptions, cutout } from "./cutout.js";

export interface CutoutTask {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3 | 4;
  options: CutoutOptions;
}

export default function runCutout(task: CutoutTask): unknown {
  const data = Buffer.from(task.data.buffer, task.data.byteOffset, task.data.byteLength);
  const subject = cutout(
    { data, width: task.width, height: task.height, channels: task.channels },
    task.options,
  );
  return Piscina.move(
    new Uint8Array(subject.data.buffer, subject.data.byteOffset, subject.data.byteLength),
  );
}
