// Copies the non-TypeScript files the built service reads at run time (SQL migrations, the
// shipped shot-list config) next to the compiled JavaScript in dist/.
import { cpSync, mkdirSync } from "node:fs";

mkdirSync("dist/store/migrations", { recursive: true });
cpSync("src/store/migrations", "dist/store/migrations", { recursive: true });
cpSync("src/config/shotlist.default.yaml", "dist/config/shotlist.default.yaml");
