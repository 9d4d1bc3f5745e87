import { escapeXml } from "./colors.js";

export const SHOTLIST_XMP_NAMESPACE = "https://shotlist.dev/ns/1.0/";
/** IPTC Photo Metadata Standard, Extension schema namespace. */
const IPTC_EXT_NAMESPACE = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/";
/** IPTC NewsCodes "Digital Source Type" vocabulary (DESIGN §8). */
export const DIGITAL_SOURCE_TYPE_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/";

/**
 * An XMP packet (XMP spec part 1, §7.3) carrying the recipe hash in Shotlist's namespace and,
 * only when given, IPTC `Iptc4xmpExt:DigitalSourceType`. A bare code such as
 * `trainedAlgorithmicMedia` is expanded to the full IPTC URI. Local renders pass none: they are
 * not AI-generated and must not claim to be.
 */
export function buildXmp(fields: { recipeHash: string; digitalSourceType?: string }): string {
  const attributes = [
    'rdf:about=""',
    `xmlns:shotlist="${SHOTLIST_XMP_NAMESPACE}"`,
    `shotlist:RecipeHash="${escapeXml(fields.recipeHash)}"`,
  ];
  if (fields.digitalSourceType !== undefined) {
    attributes.splice(2, 0, `xmlns:Iptc4xmpExt="${IPTC_EXT_NAMESPACE}"`);
    attributes.push(
      `Iptc4xmpExt:DigitalSourceType="${escapeXml(digitalSourceTypeUri(fields.digitalSourceType))}"`,
    );
  }
  return [
    '<?xpacket begin="\uFEFF" id="W5M0MpCehiHzreSzNTczkc9d"?>',
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
    `  <rdf:Description ${attributes.join("\n    ")}/>`,
    " </rdf:RDF>",
    "</x:xmpmeta>",
    '<?xpacket end="w"?>',
  ].join("\n");
}

export function digitalSourceTypeUri(value: string): string {
  if (value.startsWith(DIGITAL_SOURCE_TYPE_PREFIX)) return value;
  if (!/^[A-Za-z]+$/.test(value)) {
    throw new RangeError(`"${value}" is not an IPTC digital source type code or URI`);
  }
  return `${DIGITAL_SOURCE_TYPE_PREFIX}${value}`;
}

/** The recipe hash from an XMP packet written by buildXmp (attribute or element form). */
export function readRecipeHashFromXmp(xmp: string): string | undefined {
  return readProperty(xmp, "shotlist:RecipeHash");
}

/** The IPTC digital source type URI from an XMP packet, if it has one. */
export function readDigitalSourceTypeFromXmp(xmp: string): string | undefined {
  return readProperty(xmp, "Iptc4xmpExt:DigitalSourceType");
}

function readProperty(xmp: string, qualifiedName: string): string | undefined {
  const name = qualifiedName.replace(":", "\\:");
  const match =
    new RegExp(`${name}="([^"]*)"`).exec(xmp) ?? new RegExp(`<${name}>([^<]*)</${name}>`).exec(xmp);
  return match?.[1] === undefined ? undefined : unescapeXml(match[1]);
}

function unescapeXml(text: string): string {
  return text
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&quot;", '"')
    .replaceAll("&apos;", "'")
    .replaceAll("&amp;", "&");
}
