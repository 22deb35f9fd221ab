{{- define "cce.name" -}}{{ .Chart.Name }}{{- end -}}
{{- define "cce.fullname" -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "cce.selector" -}}
app.kubernetes.io/name: {{ include "cce.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "cce.labels" -}}
{{ include "cce.selector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{/* A StatefulSet when state persists or apps are sharded: both need a stable pod identity. */}}
{{- define "cce.stateful" -}}{{ or .Values.persistence.enabled (gt (int .Values.shards) 1) }}{{- end -}}
