package openfaas

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/academemes/harness/targets/internal/nodeimage"
	"github.com/academemes/harness/targets/option"
)

// Option keys of the openfaas kind in a scenario's target entry that the
// code names in messages.
const (
	OptGateway         = "gateway"
	OptUsername        = "username"
	OptPassword        = "password"
	OptSecretsDir      = "secrets_dir"
	OptReadyTimeout    = "ready_timeout"
	OptColdStartMethod = "cold_start_method"
	OptImage           = "image"
	OptService         = "service"
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

// Methods are the cold-start methods a scenario may choose.
var Methods = []string{MethodAuto, MethodScaleToZero, MethodRemoveContainer, MethodRedeploy}

// Options are the openfaas settings, decoded from a scenario and the
// environment.
type Options struct {
	Gateway         *url.URL
	Username        string
	Password        string
	SecretsDir      string
	Namespace       string
	ReadyTimeout    time.Duration
	ColdStartMethod string
	Image           string
	ImageSource     nodeimage.Source
	Service         string
	Env             map[string]string
}

// fields lists the option keys of a scenario's openfaas target, bound to
// o: the one place that names, documents and decodes them.
func (o *Options) fields() option.List {
	return option.List{
		option.URL(&o.Gateway, OptGateway, "gateway base URL, e.g. http://127.0.0.1:8080 (default: $"+EnvURL+"); none: the target is skipped"),
		option.String(&o.Username, OptUsername, "basic-auth user for /system/* (default: $"+EnvUsername+", else the secrets_dir file, else admin)"),
		option.String(&o.Password, OptPassword, "basic-auth password for /system/* (default: $"+EnvPassword+", else the secrets_dir file)"),
		option.String(&o.SecretsDir, OptSecretsDir, "directory with basic-auth-user and basic-auth-password files (default: "+DefaultSecretsDir+" when readable)"),
		option.String(&o.Namespace, "namespace", "function namespace (Kubernetes: openfaas-fn by default on the gateway's side); empty: the provider's default"),
		option.Duration(&o.ReadyTimeout, OptReadyTimeout, time.Millisecond, "how long a deployment or scale-up may take to report an available replica (default 60s)"),
		option.Enum(&o.ColdStartMethod, OptColdStartMethod, Methods, "how Reset and cold mode force a cold start: auto (default), scale-to-zero, remove-container, redeploy"),
		option.String(&o.Image, OptImage, "image reference to deploy instead of building one (required for a remote installation: push the function image to a registry it can pull from)"),
		option.Enum(&o.ImageSource, "image_source", nodeimage.Sources, "how to build the image on the local Docker Engine when image is absent: auto, registry, local-node (as docker-node)"),
		option.String(&o.Service, OptService, "the OpenFaaS function name (default: harness-<target name>)"),
		option.StringMap(&o.Env, "env", "map of environment variables for the function (the deployment's envVars)"),
	}
}

// decode reads the scenario's options over the defaults, and nothing
// else: it is the kind's Check. Every problem is an *option.Error.
func decode(m map[string]any) (Options, error) {
	o := Options{ReadyTimeout: 60 * time.Second, ColdStartMethod: MethodAuto, ImageSource: nodeimage.SourceAuto}
	err := o.fields().Decode(m)
	if o.Service != "" && !dnsLabel(o.Service) {
		err = errors.Join(err, option.Errorf(OptService, "%q: want lower-case letters, digits and '-', starting with a letter", o.Service))
	}
	return o, err
}

// ParseOptions decodes scenario options over the defaults, then fills what
// is missing from the environment (getenv, usually os.Getenv). It reports
// every problem at once. A missing gateway is not an error here: Start
// reports it as the platform being unavailable.
func ParseOptions(m map[string]any, getenv func(string) string) (Options, error) {
	o, err := decode(m)
	errs := []error{err}
	if o.Gateway == nil {
		if gw := strings.TrimSpace(getenv(EnvURL)); gw != "" {
			u, err := option.ParseURL(gw)
			if err != nil {
				errs = append(errs, fmt.Errorf("$%s: %w", EnvURL, err))
			}
			o.Gateway = u
		}
	}
	o.Username = cmp.Or(o.Username, getenv(EnvUsername))
	o.Password = cmp.Or(o.Password, getenv(EnvPassword))
	if o.Password == "" {
		dir, explicit := o.SecretsDir, o.SecretsDir != ""
		if !explicit {
			dir = DefaultSecretsDir
		}
		user, pass, err := readSecrets(dir)
		switch {
		case err == nil:
			o.Username = cmp.Or(o.Username, user)
			o.Password = pass
		case explicit:
			errs = append(errs, option.Errorf(OptSecretsDir, "%w", err))
		}
	}
	o.Username = cmp.Or(o.Username, "admin")
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

// dnsLabel reports whether s can name a function on every provider:
// Kubernetes wants a DNS-1123 label (stricter than the names of
// functions.ValidName: lower case, no '_', at most 63 characters).
func dnsLabel(s string) bool {
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
