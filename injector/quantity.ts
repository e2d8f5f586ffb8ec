// Just enough of Kubernetes resource quantities for agent resources: doubling a memory request into its
// limit and comparing sizes for warnings.

const FORM = /^(\d+(?:\.\d+)?)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/;
const FACTORS: Readonly<Record<string, number>> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  Ki: 1024,
  M: 1e6,
  Mi: 1024 ** 2,
  G: 1e9,
  Gi: 1024 ** 3,
  T: 1e12,
  Ti: 1024 ** 4,
};

/** The quantity in base units (bytes for memory, cores for CPU), or undefined. */
export function quantityValue(text: string): number | undefined {
  const match = FORM.exec(text);
  if (match === null) return undefined;
  return Number(match[1]) * (FACTORS[match[2] ?? ''] ?? 1);
}

/** The quantity times `factor`, in the same unit: `48Mi` × 2 → `96Mi`. */
export function scaleQuantity(text: string, factor: number): string {
  const match = FORM.exec(text);
  if (match === null) return text;
  return `${Number((Number(match[1]) * factor).toFixed(6))}${match[2] ?? ''}`;
}
