// The pure AdmissionReview handler over the review table.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bodyOf, checkCase, loadReviewCases, tableConfig } from '../test/support/admission-cases.ts';
import { reviewAdmission, reviewContext } from './review.ts';

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
