/** States of one slot of one product. */
export type SlotState = "pending" | "published" | "needs_review" | "failed";

export interface SlotStatus {
  slot: string;
  required: boolean;
  state: SlotState;
}

export interface Coverage {
  /** Required slots that are published. */
  complete: number;
  /** Required slots. */
  required: number;
  /** complete / required, 1 when nothing is required. */
  ratio: number;
}

/** Coverage = complete required slots / required slots (DESIGN "north star"). */
export function slotCoverage(slots: readonly SlotStatus[]): Coverage {
  const required = slots.filter((slot) => slot.required);
  const complete = required.filter((slot) => slot.state === "published").length;
  return {
    complete,
    required: required.length,
    ratio: required.length === 0 ? 1 : complete / required.length,
  };
}

/** A product is complete when every required slot is published. */
export function isProductComplete(slots: readonly SlotStatus[]): boolean {
  return slots.every((slot) => !slot.required || slot.state === "published");
}
