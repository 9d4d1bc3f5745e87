import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import { drawStudioPhoto } from "../../examples/studio.js";
import { cutout } from "../../src/pipeline/cutout.js";
import {
  alphaMask,
  drawSyntheticStudioPhoto,
  maskIou,
  studioCases,
} from "../fixtures/pipeline/synthetic.js";

describe("cutout", () => {
  for (const [name, scene] of Object.entries(studioCases(600))) {
    it(`separates ${name} with mask IoU of at least 0.95`, async () => {
      const photo = await drawSyntheticStudioPhoto(scene);
      const result = cutout({
        data: photo.rgb,
        width: photo.width,
        height: photo.height,
        channels: 3,
      });
      const iou = maskIou(alphaMask(result.data, result.width, result.height), photo.mask);
      assert.ok(iou >= 0.95, `IoU ${iou.toFixed(4)} < 0.95`);
    });
  }

  it("keeps anti-aliased edges as partial alpha", async () => {
    const scene = Object.values(studioCases(600))[1]!;
    const photo = await drawSyntheticStudioPhoto(scene);
    const result = cutout({
      data: photo.rgb,
      width: photo.width,
      height: photo.height,
      channels: 3,
    });
    let partial = 0;
    for (let i = 3; i < result.data.length; i += 4) {
      if (result.data[i]! > 0 && result.data[i]! < 255) partial++;
    }
    assert.ok(partial > 200, `only ${partial} partially transparent pixels`);
  });

  it("returns an already cut-out RGBA image unchanged", () => {
    const width = 40;
    const height = 40;
    const data = Buffer.alloc(width * height * 4);
    for (let y = 10; y < 30; y++) {
      for (let x = 10; x < 30; x++) data.set([200, 30, 30, 255], (y * width + x) * 4);
    }
    const result = cutout({ data, width, height, channels: 4 });
    assert.deepEqual(result.data, data);
  });

  it("cuts out the example catalogue's studio photos with mask IoU of at least 0.95", async () => {
    const specs = [
      { kind: "tshirt", color: "#c0392b", backdrop: "plain", view: 1 },
      { kind: "hoodie", color: "#2c3e50", backdrop: "plain", view: 3 },
      { kind: "vase", color: "#7f8c8d", backdrop: "plain", view: 1 },
      { kind: "vase", color: "#e8c547", backdrop: "seamless", view: 2 },
      { kind: "lamp", color: "#c0392b", backdrop: "plain", view: 3 },
      { kind: "backpack", color: "#c0392b", backdrop: "seamless", view: 0 },
    ] as const;
    for (const [index, spec] of specs.entries()) {
      const photo = await drawStudioPhoto({ ...spec, width: 800, height: 800, seed: index + 1 });
      const { data, info } = await sharp(photo.jpeg)
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const result = cutout({ data, width: info.width, height: info.height, channels: 3 });
      const truth = new Uint8Array(photo.mask.length);
      for (let i = 0; i < truth.length; i++) truth[i] = photo.mask[i]! >= 128 ? 1 : 0;
      const iou = maskIou(alphaMask(result.data, result.width, result.height), truth);
      assert.ok(iou >= 0.95, `${spec.kind} on ${spec.backdrop}: IoU ${iou.toFixed(4)} < 0.95`);
    }
  });
});
