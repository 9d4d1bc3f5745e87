/** A reference image as it arrives from outside, before it is fetched and hashed. */
export type ReferenceImageInput = { url: string } | { base64: string } | { path: string };

export interface VariantInput {
  sku: string;
  attributes: Record<string, string>;
}

/** The product shape every door accepts (DESIGN §11), validated at the edge. */
export interface ProductInput {
  sku: string;
  title: string;
  category: string;
  attributes: Record<string, string>;
  variants: VariantInput[];
  referenceImages: ReferenceImageInput[];
}

/** A reference image once its bytes are known: content-addressed. */
export interface ReferenceImage {
  sha256: string;
  width: number;
  height: number;
  format: string;
  byteSize: number;
  /** Where it came from (URL or file name), for people; never used to fetch again. */
  origin: string;
  /** Its grid of mean luminances for the notInput check, measured at intake (luminanceGrid). */
  luminanceGrid?: ArrayLike<number>;
}
