// AWS Secrets Manager, as the injector sees it: aws:<name or ARN>[#field][@version stage or id], the region
// from the pod's annotation, its IRSA / Pod Identity env, or the webhook's aws.region.
import { z } from 'zod';
import { AWS_REGION } from '../../../injector/agent-config.ts';
import { patternField, setProviderOption } from '../../../injector/annotation-spec.ts';
import { ANNOTATION_PREFIX } from '../../../injector/constants.ts';
import { PROBLEM_CODES } from '../../../injector/problems.ts';
import { declareProvider } from '../../../injector/providers/declaration.ts';

const settings = {
  aws: z
    .strictObject({
      region: z
        .string()
        .regex(AWS_REGION)
        .optional()
        .describe(
          "Default AWS region, used when neither sidekey.io/aws-region nor the app container's AWS_REGION env (IRSA sets it) gives one.",
        ),
    })
    .describe('AWS Secrets Manager defaults.')
    .prefault({}),
};

const regionOf = (options: Readonly<Record<string, unknown>> | undefined): string | undefined =>
  typeof options?.['region'] === 'string' ? options['region'] : undefined;

export const aws = declareProvider({
  name: 'aws',
  // Secret names may hold any of the path characters in any order (and ARNs hold "::").
  strictSegments: false,
  versionProblem: () => undefined,
  settings,
  flags: { 'aws-region': { path: ['aws', 'region'], kind: 'string', help: 'default AWS region' } },
  annotations: [
    {
      key: 'aws-region',
      example: 'eu-west-1',
      doc: 'AWS region of the secrets',
      default: "the pod's AWS_REGION (IRSA), else the webhook's `aws.region`",
      read: patternField(
        PROBLEM_CODES.badBackend,
        AWS_REGION,
        'an AWS region such as eu-west-1',
        32,
        (draft, value) => {
          setProviderOption(draft, 'aws', 'region', value);
        },
      ),
    },
  ],
  docs: {
    referenceExample: 'aws:prod/db#password',
    annotationHints: ['`aws-region` like `eu-west-1`'],
    missingSettings: 'region',
  },
  // Env vars set by the EKS pod identity webhook (IRSA) and the EKS Pod Identity agent, and the service endpoints
  // the app's AWS SDK is pointed at (a VPC or FIPS endpoint, a local emulator): the agent signs in and reads where
  // the app would.
  identity: {
    env: [
      'AWS_ROLE_ARN',
      'AWS_WEB_IDENTITY_TOKEN_FILE',
      'AWS_REGION',
      'AWS_DEFAULT_REGION',
      'AWS_STS_REGIONAL_ENDPOINTS',
      'AWS_CONTAINER_CREDENTIALS_FULL_URI',
      'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
      'AWS_ENDPOINT_URL',
      'AWS_ENDPOINT_URL_STS',
      'AWS_ENDPOINT_URL_SECRETS_MANAGER',
    ],
    markerEnv: ['AWS_ROLE_ARN', 'AWS_CONTAINER_CREDENTIALS_FULL_URI'],
    tokenFileEnv: ['AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE'],
    volumes: ['aws-iam-token', 'eks-pod-identity-token'],
    regionEnv: ['AWS_REGION', 'AWS_DEFAULT_REGION'],
  },
  reservedVolumes: [],
  unused: (request) =>
    request.providers['aws'] === undefined
      ? undefined
      : `${ANNOTATION_PREFIX}aws-region is ignored: no secret uses aws:`,
  resolve: ({ request, identity, settings: { aws: defaults } }, out) => {
    const podRegion = identity.region !== undefined && AWS_REGION.test(identity.region) ? identity.region : undefined;
    const region = regionOf(request.providers['aws']) ?? podRegion ?? defaults.region;
    if (region !== undefined) return { config: { aws: { region } } };
    out.problems.push({
      code: PROBLEM_CODES.missingSetting,
      annotation: 'aws-region',
      message:
        'no AWS region: set this annotation, AWS_REGION on the app container, or aws.region in the webhook configuration',
    });
    return undefined;
  },
});
