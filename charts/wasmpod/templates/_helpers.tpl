{{/* Chart name, possibly overridden. */}}
{{- define "wasmpod.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: the release name, with the chart name unless it has it. */}}
{{- define "wasmpod.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "wasmpod.operatorName" -}}
{{ include "wasmpod.fullname" . }}-operator
{{- end }}

{{- define "wasmpod.activatorName" -}}
{{ include "wasmpod.fullname" . }}-activator
{{- end }}

{{- define "wasmpod.installerName" -}}
{{ include "wasmpod.fullname" . }}-node-installer
{{- end }}

{{/* Labels of every resource. */}}
{{- define "wasmpod.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "wasmpod.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wasmpod
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of a component (only the immutable name/instance pair plus the component). */}}
{{- define "wasmpod.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wasmpod.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of a component's resources. */}}
{{- define "wasmpod.componentLabels" -}}
{{ include "wasmpod.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* "repository:tag" with the tag defaulting to appVersion; args: dict image root. */}}
{{- define "wasmpod.image" -}}
{{ .image.repository }}:{{ .image.tag | default .root.Chart.AppVersion }}
{{- end }}

{{- define "wasmpod.operatorServiceAccount" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "wasmpod.operatorName" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "wasmpod.installerServiceAccount" -}}
{{- if .Values.installer.serviceAccount.create }}
{{- default (include "wasmpod.installerName" .) .Values.installer.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.installer.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Whether the operator elects a leader: the explicit value, else replicas > 1. */}}
{{- define "wasmpod.leaderElect" -}}
{{- if kindIs "bool" .Values.operator.leaderElection.enabled }}
{{- .Values.operator.leaderElection.enabled }}
{{- else }}
{{- gt (int .Values.operator.replicas) 1 }}
{{- end }}
{{- end }}
