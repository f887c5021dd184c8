{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "jfrog-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already contains the chart name. */}}
{{- define "jfrog-exporter.fullname" -}}
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

{{- define "jfrog-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "jfrog-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jfrog-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "jfrog-exporter.labels" -}}
helm.sh/chart: {{ include "jfrog-exporter.chart" . }}
{{ include "jfrog-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: exporter
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "jfrog-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "jfrog-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Values the chart has no sensible default for, checked before anything is rendered: one error
that names every missing value and says what to set, instead of a pod that crash-loops.
*/}}
{{- define "jfrog-exporter.checkRequired" -}}
{{- $missing := list }}
{{- if not .Values.targets }}
{{- $missing = append $missing "targets: set at least one JFrog Platform to watch, e.g. --set targets[0].url=https://acme.jfrog.io --set-string targets[0].auth.token=<token> (see the chart's values.yaml)" }}
{{- end }}
{{- if not .Values.image.repository }}
{{- $missing = append $missing (printf "image.repository: set it to where you pushed the image, which is built from the repository's Dockerfile and published nowhere else: docker build -t REGISTRY/jfrog-exporter:%s . && docker push REGISTRY/jfrog-exporter:%s, then --set image.repository=REGISTRY/jfrog-exporter (see helm/README.md)" .Chart.AppVersion .Chart.AppVersion) }}
{{- end }}
{{- if and .Values.prometheusRule.enabled (not .Values.prometheusRule.runbookBaseUrl) }}
{{- $missing = append $missing "prometheusRule.runbookBaseUrl: set it to where your operators read the runbook (the chart carries it as files/alerts/runbook.md), e.g. https://git.example.com/ops/jfrog-exporter/blob/main/alerts/runbook.md; every alert links to its section there" }}
{{- end }}
{{- if $missing }}
{{- fail (printf "missing values:\n- %s" (join "\n- " $missing)) }}
{{- end }}
{{- end }}

{{- define "jfrog-exporter.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "jfrog-exporter.secretsDir" -}}/etc/jfrog-exporter/secrets{{- end }}
{{- define "jfrog-exporter.configDir" -}}/etc/jfrog-exporter/config{{- end }}
{{- define "jfrog-exporter.webConfigDir" -}}/etc/jfrog-exporter/web{{- end }}

{{/* Keys under which inline credentials of target i are stored in the chart's Secret. */}}
{{- define "jfrog-exporter.inlineTokenKey" -}}target-{{ . }}-token{{- end }}
{{- define "jfrog-exporter.inlinePasswordKey" -}}target-{{ . }}-password{{- end }}

{{/*
The data of the Secret the chart creates, as YAML (key: plain value): credentials.secretData
plus every inline token/password of the targets. Empty when there is none.
*/}}
{{- define "jfrog-exporter.secretData" -}}
{{- $data := dict }}
{{- range $k, $v := .Values.credentials.secretData }}
{{- $_ := set $data $k (toString $v) }}
{{- end }}
{{- range $i, $t := .Values.targets }}
{{- $auth := $t.auth | default dict }}
{{- if hasKey $auth "token" }}
{{- $_ := set $data (include "jfrog-exporter.inlineTokenKey" $i) (toString $auth.token) }}
{{- end }}
{{- if hasKey $auth "password" }}
{{- $_ := set $data (include "jfrog-exporter.inlinePasswordKey" $i) (toString $auth.password) }}
{{- end }}
{{- end }}
{{- if $data }}
{{- toYaml $data }}
{{- end }}
{{- end }}

{{/*
Where a *_secret_key points to: the mounted file, after checking that the key can exist.
Called with (dict "root" $ "key" KEY "where" FIELD).
*/}}
{{- define "jfrog-exporter.secretKeyFile" -}}
{{- $root := .root }}
{{- if not (or (hasKey ($root.Values.credentials.secretData | default dict) .key) $root.Values.credentials.existingSecret) }}
{{- fail (printf "%s: key %q is not in credentials.secretData and credentials.existingSecret is not set" .where .key) }}
{{- end }}
{{- printf "%s/%s" (include "jfrog-exporter.secretsDir" $root) .key }}
{{- end }}

{{/*
The exporter's configuration file. Chart-only auth keys (token, token_secret_key, password,
password_secret_key) become token_file/password_file under the secrets directory, so no
secret is ever written into the ConfigMap. Auth combinations the exporter would reject at
start-up are rejected here already, naming the field.
*/}}
{{- define "jfrog-exporter.config" -}}
{{- $root := . }}
{{- $dir := include "jfrog-exporter.secretsDir" . }}
{{- $targets := list }}
{{- $names := dict }}
{{- range $i, $target := .Values.targets }}
{{- $t := deepCopy $target }}
{{- $where := printf "targets[%d]" $i }}
{{- $name := $t.name | default (urlParse $t.url).host }}
{{- if hasKey $names $name }}
{{- fail (printf "%s: two targets are named %q; give each a unique name" $where $name) }}
{{- end }}
{{- $_ := set $names $name true }}
{{- $auth := deepCopy ($t.auth | default dict) }}
{{- $tokenSources := list }}
{{- range $k := list "token" "token_secret_key" "token_file" "token_env" }}
{{- if hasKey $auth $k }}{{ $tokenSources = append $tokenSources $k }}{{ end }}
{{- end }}
{{- $passwordSources := list }}
{{- range $k := list "password" "password_secret_key" "password_file" "password_env" }}
{{- if hasKey $auth $k }}{{ $passwordSources = append $passwordSources $k }}{{ end }}
{{- end }}
{{- if gt (len $tokenSources) 1 }}
{{- fail (printf "%s.auth: give one of %s, not several" $where (join ", " $tokenSources)) }}
{{- end }}
{{- if gt (len $passwordSources) 1 }}
{{- fail (printf "%s.auth: give one of %s, not several" $where (join ", " $passwordSources)) }}
{{- end }}
{{- if and $tokenSources (or $passwordSources (hasKey $auth "username")) }}
{{- fail (printf "%s.auth: use either a token or username + password, not both" $where) }}
{{- end }}
{{- if and $passwordSources (not (hasKey $auth "username")) }}
{{- fail (printf "%s.auth: username is required with %s" $where (first $passwordSources)) }}
{{- end }}
{{- if and (hasKey $auth "username") (not $passwordSources) }}
{{- fail (printf "%s.auth: username needs one of password, password_secret_key, password_file, password_env" $where) }}
{{- end }}
{{- if hasKey $auth "token" }}
{{- $_ := set $auth "token_file" (printf "%s/%s" $dir (include "jfrog-exporter.inlineTokenKey" $i)) }}
{{- $_ := unset $auth "token" }}
{{- else if hasKey $auth "token_secret_key" }}
{{- $_ := set $auth "token_file" (include "jfrog-exporter.secretKeyFile" (dict "root" $root "key" $auth.token_secret_key "where" (printf "%s.auth.token_secret_key" $where))) }}
{{- $_ := unset $auth "token_secret_key" }}
{{- end }}
{{- if hasKey $auth "password" }}
{{- $_ := set $auth "password_file" (printf "%s/%s" $dir (include "jfrog-exporter.inlinePasswordKey" $i)) }}
{{- $_ := unset $auth "password" }}
{{- else if hasKey $auth "password_secret_key" }}
{{- $_ := set $auth "password_file" (include "jfrog-exporter.secretKeyFile" (dict "root" $root "key" $auth.password_secret_key "where" (printf "%s.auth.password_secret_key" $where))) }}
{{- $_ := unset $auth "password_secret_key" }}
{{- end }}
{{- if $auth }}
{{- $_ := set $t "auth" $auth }}
{{- else }}
{{- $_ := unset $t "auth" }}
{{- end }}
{{- $targets = append $targets $t }}
{{- end }}
{{- if not $targets -}}
targets: []
{{- else -}}
targets:
{{- /* Keys in the order of the documented format rather than toYaml's alphabetical one. */}}
{{- $order := list "name" "url" "auth" "tls" "timeout" "max_concurrency" "retries" "max_requests_per_second" "max_response_bytes" "max_series" "repos" "collectors" }}
{{- range $t := $targets }}
{{- $item := "" }}
{{- range $k := concat $order (keys $t | sortAlpha) | uniq }}
{{- if hasKey $t $k }}
{{- $item = printf "%s%s\n" $item (toYaml (dict $k (get $t $k))) }}
{{- end }}
{{- end }}
{{ regexReplaceAll "^  " ($item | trimSuffix "\n" | indent 2) "- " }}
{{- end }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the pod needs the secrets volume. */}}
{{- define "jfrog-exporter.hasSecretsVolume" -}}
{{- if or (include "jfrog-exporter.secretData" .) .Values.credentials.existingSecret }}true{{ end }}
{{- end }}

{{/* Non-empty when the exporter gets a web configuration file. */}}
{{- define "jfrog-exporter.hasWebConfig" -}}
{{- if or .Values.exporter.webConfig .Values.exporter.webConfigExistingSecret }}true{{ end }}
{{- end }}

{{/* HOST:PORT for --listen; an IPv6 host goes in brackets. */}}
{{- define "jfrog-exporter.listen" -}}
{{- $host := .Values.exporter.listenHost }}
{{- if contains ":" $host }}
{{- printf "[%s]:%d" $host (int .Values.exporter.containerPort) }}
{{- else }}
{{- printf "%s:%d" $host (int .Values.exporter.containerPort) }}
{{- end }}
{{- end }}

{{/*
Alert rule files (files/alerts/*.yaml, copies of the repository's alerts/) merged into one list of
groups. Each runbook_url keeps its section (#alert-name) and gets prometheusRule.runbookBaseUrl as
its base, so the links lead to where the operator keeps the runbook.
*/}}
{{- define "jfrog-exporter.ruleGroups" -}}
{{- $groups := list }}
{{- $seen := dict }}
{{- range $path, $_ := .Files.Glob "files/alerts/*.yaml" }}
{{- $doc := $.Files.Get $path | fromYaml }}
{{- if hasKey $doc "Error" }}
{{- fail (printf "%s: not valid YAML: %s" $path $doc.Error) }}
{{- end }}
{{- if not (kindIs "slice" $doc.groups) }}
{{- fail (printf "%s: a rule file needs a top-level groups: list" $path) }}
{{- end }}
{{- range $g := $doc.groups }}
{{- range $rule := $g.rules | default list }}
{{- $annotations := $rule.annotations | default dict }}
{{- if and $.Values.prometheusRule.runbookBaseUrl (hasKey $annotations "runbook_url") }}
{{- $section := regexFind "#.*$" (toString $annotations.runbook_url) }}
{{- $_ := set $annotations "runbook_url" (printf "%s%s" $.Values.prometheusRule.runbookBaseUrl $section) }}
{{- end }}
{{- end }}
{{- if hasKey $seen (toString $g.name) }}
{{- fail (printf "%s: rule group %q is defined twice across alerts/*.yaml" $path (toString $g.name)) }}
{{- end }}
{{- $_ := set $seen (toString $g.name) true }}
{{- $groups = append $groups $g }}
{{- end }}
{{- end }}
{{- if $groups }}
{{- toYaml $groups }}
{{- end }}
{{- end }}
