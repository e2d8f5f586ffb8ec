// The AdmissionReview table of test/fixtures/admission/reviews.yaml and the checks shared by the pure handler
// test and the HTTPS test: the answer is a well-formed review (uid echoed) or a 4xx with a JSON reason.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { applyPatch } from 'rfc6902';
import { parse } from 'yaml';
import { webhookConfigSchema } from '../../webhook/config.ts';
import type { WebhookConfig } from '../../webhook/config.ts';

export interface ReviewCase {
  readonly name: string;
  readonly review?: unknown;
  readonly raw?: string;
  readonly expect: {
    readonly status: number;
    readonly allowed?: boolean;
    readonly result: string;
    readonly patch?: boolean;
    readonly warnings?: readonly string[];
    readonly message?: readonly string[];
    readonly causes?: readonly string[];
    readonly error?: string;
  };
}

export function loadReviewCases(): ReviewCase[] {
  return parse(readFileSync(new URL('../fixtures/admission/reviews.yaml', import.meta.url), 'utf8')) as ReviewCase[];
}

export function bodyOf(c: ReviewCase): string {
  return c.raw ?? JSON.stringify(c.review);
}

/** The configuration the table assumes. */
export function tableConfig(overrides: Record<string, unknown> = {}): WebhookConfig {
  return webhookConfigSchema.parse({ namespace: 'sidekey-system', excludedNamespaces: ['legacy'], ...overrides });
}

interface Review {
  apiVersion: string;
  kind: string;
  response: {
    uid: string;
    allowed: boolean;
    patchType?: string;
    patch?: string;
    warnings?: string[];
    status?: { code: number; message: string; details?: { causes?: { reason: string }[] } };
  };
}

/** Checks any answer: a 200 must be a well-formed AdmissionReview v1 response for `uid`; else a 4xx. */
export function assertWellFormed(status: number, body: unknown, uid: string | undefined): void {
  if (status !== 200) {
    assert.ok(status >= 400 && status < 500, `a client error, not ${status}`);
    assert.equal(typeof (body as { error?: unknown }).error, 'string');
    return;
  }
  const review = body as Review;
  assert.equal(review.apiVersion, 'admission.k8s.io/v1');
  assert.equal(review.kind, 'AdmissionReview');
  assert.equal(typeof review.response.allowed, 'boolean');
  if (uid !== undefined) assert.equal(review.response.uid, uid);
  if (review.response.patch !== undefined) {
    assert.equal(review.response.patchType, 'JSONPatch');
    assert.ok(Array.isArray(JSON.parse(Buffer.from(review.response.patch, 'base64').toString('utf8'))));
  }
  if (!review.response.allowed) assert.equal(typeof review.response.status?.message, 'string');
}

export function checkCase(c: ReviewCase, status: number, body: unknown): void {
  const { expect } = c;
  assert.equal(status, expect.status, JSON.stringify(body).slice(0, 500));
  const request = (c.review as { request?: { uid?: string; object?: unknown } } | undefined)?.request;
  assertWellFormed(status, body, request?.uid);
  if (status !== 200) {
    if (expect.error !== undefined)
      assert.ok((body as { error: string }).error.includes(expect.error), (body as { error: string }).error);
    return;
  }
  const { response } = body as Review;
  assert.equal(response.allowed, expect.allowed);
  assert.equal(response.patch !== undefined, expect.patch === true);
  if (response.patch !== undefined) {
    const pod = structuredClone(request?.object);
    const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Parameters<typeof applyPatch>[1];
    assert.deepEqual(
      applyPatch(pod, ops).filter((e) => e !== null),
      [],
    );
  }
  for (const w of expect.warnings ?? [])
    assert.ok(
      (response.warnings ?? []).some((x) => x.includes(w)),
      `warning ${w}`,
    );
  for (const m of expect.message ?? [])
    assert.ok(response.status?.message.includes(m), `${response.status?.message ?? ''} includes ${m}`);
  if (expect.causes !== undefined) {
    assert.deepEqual((response.status?.details?.causes ?? []).map((x) => x.reason).sort(), [...expect.causes].sort());
  }
}
