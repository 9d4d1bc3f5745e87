/**
 * Small shot lists for benchmarks and tests that need one quick slot rather than the shipped
 * six: the shipped hero recipe (cut out, crop, place on white) on `home` products only.
 */
export function heroOnlyShotList(side: number): string {
  return `version: 1
defaults:
  output: { width: ${side}, height: ${side}, format: jpeg, quality: 86 }
slots:
  hero:
    alt: "{{title}}"
    source: { reference: 0 }
    chain:
      - provider: local
        model: sharp
        steps:
          - { op: cutout }
          - { op: crop }
          - { op: place, fill: 0.85, background: "#ffffff" }
    checks:
      notBlank: { minStdDev: 4 }
categories:
  home:
    slots: [hero]
`;
}
