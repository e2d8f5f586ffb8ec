{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "sidekey.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of every object: the release name, plus the chart name unless the release name contains it. */}}
{{- define "sidekey.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sidekey.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sidekey.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{- define "sidekey.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sidekey.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sidekey
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "sidekey.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sidekey.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The webhook image: repository:tag, or repository@sha256:... when the tag is a digest (as for the agent). */}}
{{- define "sidekey.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if hasPrefix "sha256:" $tag }}
{{- printf "%s@%s" .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Secret holding the webhook's serving certificate (tls.crt, tls.key, ca.crt): the chart's, or yours in tls.mode existing. */}}
{{- define "sidekey.tlsSecretName" -}}
{{- if eq .Values.tls.mode "existing" }}
{{- required "tls.mode existing needs tls.existing.secretName: a kubernetes.io/tls Secret in the release namespace" .Values.tls.existing.secretName }}
{{- else }}
{{- printf "%s-tls" (include "sidekey.fullname" .) }}
{{- end }}
{{- end }}

{{/* DNS names the API server may use to reach the webhook Service. */}}
{{- define "sidekey.dnsNames" -}}
{{- $svc := include "sidekey.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/* The webhook configuration file: values.config, with the agent image tag defaulting to appVersion. */}}
{{- define "sidekey.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $_ := set $config.image "tag" (default .Chart.AppVersion $config.image.tag) }}
{{- toPrettyJson $config }}
{{- end }}

{{/*
The namespaces both webhook configurations see: never the system namespaces nor our own (a webhook must not
gate its own pods), nor config.excludedNamespaces; ANDed with webhook.namespaceSelector.
*/}}
{{- define "sidekey.namespaceSelector" -}}
{{- with .Values.webhook.namespaceSelector.matchLabels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- concat (list "kube-system" "kube-node-lease" .Release.Namespace) .Values.config.excludedNamespaces | uniq | toYaml | nindent 6 }}
  {{- with .Values.webhook.namespaceSelector.matchExpressions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
