// The pure AdmissionReview handler over the review table.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bodyOf, checkCase, loadReviewCases, tableConfig } from '../test/support/admission-cases.ts';
import { MAX_JSON_VALUES, reviewAdmission, reviewContext } from './review.ts';

void describe('reviewAdmission', () => {
  const ctx = reviewContext(tableConfig());
  for (const c of loadReviewCases()) {
    void it(c.name, () => {
      const outcome = reviewAdmission(bodyOf(c), ctx);
      assert.equal(outcome.result, c.expect.result);
      checkCase(c, outcome.status, outcome.body);
    });
  }
});

void describe('a review too large to parse', () => {
  const ctx = reviewContext(tableConfig({ aws: { region: 'eu-west-1' } }));
  /** A review in the API server's field order whose pod has `n` more (empty, foreign) annotations. */
  const review = (n: number): string => {
    const annotations: Record<string, string> = {
      'sidekey.io/inject': 'true',
      'sidekey.io/secret-db': 'aws:prod/db#password',
    };
    for (let i = 0; i < n; i += 1) annotations[`a${i.toString(36)}`] = '';
    const pod = { metadata: { name: 'a', annotations }, spec: { containers: [{ name: 'app', image: 'app' }] } };
    return JSON.stringify({
      kind: 'AdmissionReview',
      apiVersion: 'admission.k8s.io/v1',
      request: {
        uid: 'u-1',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        namespace: 'ns',
        object: pod,
      },
    });
  };

  void it(`is refused unparsed past ${MAX_JSON_VALUES} JSON values, with SK_TOO_MANY naming the bound and the fix`, () => {
    const outcome = reviewAdmission(review(MAX_JSON_VALUES / 2), ctx);
    assert.equal(outcome.result, 'denied');
    const { response } = outcome.body as {
      response: {
        uid: string;
        allowed: boolean;
        status: { message: string; details: { causes: { reason: string }[] } };
      };
    };
    assert.equal(response.uid, 'u-1');
    assert.equal(response.allowed, false);
    assert.deepEqual(
      response.status.details.causes.map((c) => c.reason),
      ['SK_TOO_MANY'],
    );
    assert.match(
      response.status.message,
      new RegExp(
        `more than ${MAX_JSON_VALUES} JSON values .* remove unused annotations, labels, env entries or containers`,
      ),
    );
  });

  void it('is read as usual just under the bound', () => {
    assert.equal(reviewAdmission(review(MAX_JSON_VALUES / 2 - 100), ctx).result, 'injected');
  });

  void it('is a 400 when no uid leads the body, as none does in a body the API server did not write', () => {
    const outcome = reviewAdmission(
      `{"request":{"object":${JSON.stringify(Array.from({ length: MAX_JSON_VALUES + 1 }, () => ({})))}}}`,
      ctx,
    );
    assert.equal(outcome.status, 400);
    assert.match((outcome.body as { error: string }).error, new RegExp(`more than ${MAX_JSON_VALUES} JSON values`));
  });
});
