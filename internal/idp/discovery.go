package idp

import (
	"encoding/json"
	"net/http"
)

// discovery is the OpenID Provider / OAuth 2.0 AS metadata document. Only
// what is implemented is advertised: no implicit flow, no password grant
// (OA-G), S256 only (OA-P), iss in authorization responses (OA-M).
type discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionAuthMethods          []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationAuthMethods             []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	AuthorizationResponseIss          bool     `json:"authorization_response_iss_parameter_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
}

func (p *Provider) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	secretMethods := []string{"client_secret_basic", "client_secret_post"}
	d := discovery{
		Issuer:                            p.cfg.Issuer,
		AuthorizationEndpoint:             p.endpoint(pathAuthorize),
		TokenEndpoint:                     p.endpoint(pathToken),
		UserinfoEndpoint:                  p.endpoint(pathUserinfo),
		JWKSURI:                           p.endpoint(pathJWKS),
		IntrospectionEndpoint:             p.endpoint(pathIntrospect),
		RevocationEndpoint:                p.endpoint(pathRevoke),
		EndSessionEndpoint:                p.endpoint(pathEndSession),
		ScopesSupported:                   []string{"openid", "profile", "email", "offline_access"},
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{grantCode, grantRefresh, grantCC, grantTokenExchange},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{p.signer.Algorithm()},
		TokenEndpointAuthMethodsSupported: append(secretMethods, "none"),
		IntrospectionAuthMethods:          secretMethods,
		RevocationAuthMethods:             append(secretMethods, "none"),
		CodeChallengeMethodsSupported:     []string{"S256"},
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash",
			"sid", "name", "preferred_username", "email", "email_verified"},
		AuthorizationResponseIss: true,
		PromptValuesSupported:    []string{"none", "login", "consent"},
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(d)
}
