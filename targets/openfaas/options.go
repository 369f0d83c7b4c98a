package openfaas

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/academemes/harness/targets/internal/nodeimage"
)

// Option keys of the openfaas kind in a scenario's target entry.
const (
	OptGateway         = "gateway"
	OptUsername        = "username"
	OptPassword        = "password"
	OptSecretsDir      = "secrets_dir"
	OptNamespace       = "namespace"
	OptRequired        = "required"
	OptReadyTimeout    = "ready_timeout"
	OptColdStartMethod = "cold_start_method"
	OptImage           = "image"
	OptImageSource     = "image_source"
	OptService         = "service"
	OptEnv             = "env"
)

// Environment variables read when the scenario leaves the option out, as
// faas-cli reads them.
const (
	EnvURL      = "OPENFAAS_URL"
	EnvUsername = "OPENFAAS_USERNAME"
	EnvPassword = "OPENFAAS_PASSWORD"
)

// DefaultSecretsDir is where faasd keeps its basic-auth files; it is read
// when no password is given and the directory is readable.
const DefaultSecretsDir = "/var/lib/faasd/secrets"

// Cold-start methods (option cold_start_method, and "cold_start_method" in
// the report).
const (
	// MethodAuto tries scale-to-zero and falls back to remove-container
	// (when the function's container is on the local Docker Engine), then
	// to redeploy.
	MethodAuto = "auto"
	// MethodScaleToZero scales the function to 0 replicas; the gateway
	// scales it from zero on the next request.
	MethodScaleToZero = "scale-to-zero"
	// MethodRemoveContainer removes the function's container on the local
	// Docker Engine; the provider reports 0 replicas and the gateway
	// starts a new one on the next request.
	MethodRemoveContainer = "remove-container"
	// MethodRedeploy deletes the function and deploys it again.
	MethodRedeploy = "redeploy"
)

var optionDocs = map[string]string{
	OptGateway:         "gateway base URL, e.g. http://127.0.0.1:8080 (default: $" + EnvURL + "); none: the target is skipped",
	OptUsername:        "basic-auth user for /system/* (default: $" + EnvUsername + ", else the secrets_dir file, else admin)",
	OptPassword:        "basic-auth password for /system/* (default: $" + EnvPassword + ", else the secrets_dir file)",
	OptSecretsDir:      "directory with basic-auth-user and basic-auth-password files (default: " + DefaultSecretsDir + " when readable)",
	OptNamespace:       "function namespace (Kubernetes: openfaas-fn by default on the gateway's side); empty: the provider's default",
	OptRequired:        "true: an unreachable gateway, refused credentials or a function that never gets ready fail the run instead of skipping the target",
	OptReadyTimeout:    "how long a deployment or scale-up may take to report an available replica (default 60s)",
	OptColdStartMethod: "how Reset and cold mode force a cold start: auto (default), scale-to-zero, remove-container, redeploy",
	OptImage:           "image reference to deploy instead of building one (required for a remote installation: push the function image to a registry it can pull from)",
	OptImageSource:     "how to build the image on the local Docker Engine when image is absent: auto, registry, local-node (as docker-node)",
	OptService:         "the OpenFaaS function name (default: harness-<target name>)",
	OptEnv:             "map of environment variables for the function (the deployment's envVars)",
}

// Options are the openfaas settings, decoded from a scenario and the
// environment.
type Options struct {
	Gateway         *url.URL
	Username        string
	Password        string
	SecretsDir      string
	Namespace       string
	Required        bool
	ReadyTimeout    time.Duration
	ColdStartMethod string
	Image           string
	ImageSource     nodeimage.Source
	Service         string
	Env             map[string]string
}

// ParseOptions decodes scenario options over the defaults, then fills what
// is missing from the environment (getenv, usually os.Getenv). It reports
// every problem at once. A missing gateway is not an error here: Start
// reports it as the platform being unavailable.
func ParseOptions(m map[string]any, getenv func(string) string) (Options, error) {
	o := Options{ReadyTimeout: 60 * time.Second, ColdStartMethod: MethodAuto, ImageSource: nodeimage.SourceAuto}
	var errs []error
	bad := func(key string, err error) { errs = append(errs, fmt.Errorf("option %s: %w", key, err)) }
	str := func(key string, v any) string {
		s, ok := v.(string)
		if !ok {
			bad(key, fmt.Errorf("want a string, got %v", v))
		}
		return strings.TrimSpace(s)
	}
	var gateway string
	for key, v := range m {
		switch key {
		case OptGateway:
			gateway = str(key, v)
		case OptUsername:
			o.Username = str(key, v)
		case OptPassword:
			o.Password = str(key, v)
		case OptSecretsDir:
			o.SecretsDir = str(key, v)
		case OptNamespace:
			o.Namespace = str(key, v)
		case OptRequired:
			b, ok := v.(bool)
			if !ok {
				bad(key, fmt.Errorf("want true or false, got %v", v))
			}
			o.Required = b
		case OptReadyTimeout:
			d, err := time.ParseDuration(str(key, v))
			if err == nil && d <= 0 {
				err = errors.New("must be positive")
			}
			if err != nil {
				bad(key, fmt.Errorf("want a duration like 60s: %w", err))
			}
			o.ReadyTimeout = d
		case OptColdStartMethod:
			switch s := str(key, v); s {
			case MethodAuto, MethodScaleToZero, MethodRemoveContainer, MethodRedeploy:
				o.ColdStartMethod = s
			default:
				bad(key, fmt.Errorf("%q: want auto, scale-to-zero, remove-container or redeploy", s))
			}
		case OptImage:
			o.Image = str(key, v)
		case OptImageSource:
			src, err := nodeimage.ParseSource(str(key, v))
			if err != nil {
				bad(key, err)
			}
			o.ImageSource = src
		case OptService:
			o.Service = str(key, v)
			if o.Service != "" && !validName(o.Service) {
				bad(key, fmt.Errorf("%q: want lower-case letters, digits and '-', starting with a letter", o.Service))
			}
		case OptEnv:
			mm, ok := v.(map[string]any)
			if !ok {
				bad(key, fmt.Errorf("want a map of names to values, got %v", v))
				break
			}
			o.Env = map[string]string{}
			for k, val := range mm {
				o.Env[k] = fmt.Sprint(val)
			}
		default:
			bad(key, fmt.Errorf("unknown option; known: %s", strings.Join(optionKeys(), ", ")))
		}
	}
	if gateway == "" {
		gateway = strings.TrimSpace(getenv(EnvURL))
	}
	if gateway != "" {
		u, err := url.Parse(gateway)
		if err == nil && (u.Scheme != "http" && u.Scheme != "https" || u.Host == "") {
			err = errors.New("want http://HOST:PORT or https://HOST")
		}
		if err != nil {
			bad(OptGateway, fmt.Errorf("%q: %w", gateway, err))
		} else {
			o.Gateway = u
		}
	}
	if o.Username == "" {
		o.Username = getenv(EnvUsername)
	}
	if o.Password == "" {
		o.Password = getenv(EnvPassword)
	}
	if o.Password == "" {
		dir, explicit := o.SecretsDir, o.SecretsDir != ""
		if !explicit {
			dir = DefaultSecretsDir
		}
		user, pass, err := readSecrets(dir)
		switch {
		case err == nil:
			if o.Username == "" {
				o.Username = user
			}
			o.Password = pass
		case explicit:
			bad(OptSecretsDir, err)
		}
	}
	if o.Username == "" {
		o.Username = "admin"
	}
	return o, errors.Join(errs...)
}

// readSecrets reads OpenFaaS's basic-auth files from dir.
func readSecrets(dir string) (user, password string, err error) {
	u, err := os.ReadFile(filepath.Join(dir, "basic-auth-user"))
	if err != nil {
		return "", "", fmt.Errorf("read basic-auth-user: %w", err)
	}
	p, err := os.ReadFile(filepath.Join(dir, "basic-auth-password"))
	if err != nil {
		return "", "", fmt.Errorf("read basic-auth-password: %w", err)
	}
	return strings.TrimSpace(string(u)), strings.TrimSpace(string(p)), nil
}

func optionKeys() []string {
	keys := make([]string, 0, len(optionDocs))
	for k := range optionDocs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// validName reports whether s can name a function on every provider:
// Kubernetes wants a DNS-1123 label.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// serviceName makes a function name from a target name.
func serviceName(target string) string {
	var b strings.Builder
	b.WriteString("harness-")
	dash := false
	for _, c := range strings.ToLower(target) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}
