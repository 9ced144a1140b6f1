{{/* The release's full name, at most 63 characters. */}}
{{- define "rollgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The tester's pods must never match the controller's selector. */}}
{{- define "rollgate.testerSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-tester
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: tester
{{- end -}}

{{- define "rollgate.labels" -}}
{{ include "rollgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "rollgate.serviceAccountName" -}}
{{- default (include "rollgate.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The Secrets the controller may read, by name. */}}
{{- define "rollgate.secretNames" -}}
{{- $names := list -}}
{{- with .Values.gitops.credentialsSecret }}{{ $names = append $names . }}{{ end -}}
{{- range .Values.extraSecrets }}{{ $names = append $names . }}{{ end -}}
{{- toJson (uniq $names) -}}
{{- end -}}
