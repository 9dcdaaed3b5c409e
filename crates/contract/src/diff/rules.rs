//! The rules a diff applies. Each has a stable id (users filter and
//! suppress by it, so ids are never renamed) and always the same severity:
//! a finding's severity follows from its rule, never from a judgement made
//! where it is found.

/// How much a change matters to the clients of the old contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// A client written against the old contract can fail against the new.
    Breaking,
    /// Probably compatible, but some clients may notice: worth a look.
    Warning,
    /// A compatible change, listed so the report reads as a changelog.
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Breaking => "breaking",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    /// One line on what the rule detects, for `--help`-style listings.
    pub summary: &'static str,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $severity:ident, $summary:literal;)*) => {
        $(pub const $name: Rule = Rule {
            id: $id,
            severity: Severity::$severity,
            summary: $summary,
        };)*
        /// Every rule, grouped by what it looks at.
        pub const RULES: &[Rule] = &[$($name),*];
    };
}

rules! {
    OPERATION_REMOVED = "operation-removed", Breaking, "an operation (method and path) was removed";
    OPERATION_ADDED = "operation-added", Info, "an operation was added";
    OPERATION_ID_CHANGED = "operation-id-changed", Warning, "the operationId changed or was removed (generated SDK method names change)";
    PATH_PARAMETER_RENAMED = "path-parameter-renamed", Info, "a path parameter was renamed; the URL is unchanged";
    SECURITY_ADDED = "security-added", Breaking, "a request authorised before no longer meets any security requirement";
    SECURITY_SCOPE_ADDED = "security-scope-added", Breaking, "a security requirement now needs more OAuth scopes";
    SECURITY_REMOVED = "security-removed", Info, "the operation now accepts unauthenticated requests";
    REQUEST_PARAM_ADDED_REQUIRED = "request-param-added-required", Breaking, "a required parameter was added";
    REQUEST_PARAM_ADDED_OPTIONAL = "request-param-added-optional", Info, "an optional parameter was added";
    REQUEST_PARAM_REMOVED = "request-param-removed", Warning, "a parameter was removed (clients sending it are ignored)";
    REQUEST_PARAM_BECAME_REQUIRED = "request-param-became-required", Breaking, "an optional parameter became required";
    PARAMETER_LOCATION_CHANGED = "parameter-location-changed", Breaking, "a parameter moved (e.g. from query to header)";
    PARAMETER_STYLE_CHANGED = "parameter-style-changed", Breaking, "a parameter's serialisation (style or explode) changed";
    REQUEST_BODY_BECAME_REQUIRED = "request-body-became-required", Breaking, "the request body became required (or was added as required)";
    REQUEST_BODY_REMOVED = "request-body-removed", Warning, "the request body was removed (clients sending one are ignored)";
    REQUEST_CONTENT_TYPE_REMOVED = "request-content-type-removed", Breaking, "a request media type is no longer accepted";
    REQUEST_CONTENT_TYPE_ADDED = "request-content-type-added", Info, "a request media type was added";
    RESPONSE_SUCCESS_STATUS_REMOVED = "response-success-status-removed", Breaking, "a 2xx response status was removed";
    RESPONSE_SUCCESS_STATUS_ADDED = "response-success-status-added", Warning, "a 2xx response status was added (clients may not expect it)";
    RESPONSE_STATUS_REMOVED = "response-status-removed", Info, "a non-2xx response was removed from the document";
    RESPONSE_STATUS_ADDED = "response-status-added", Info, "a non-2xx response was added";
    RESPONSE_CONTENT_TYPE_REMOVED = "response-content-type-removed", Breaking, "a response media type was removed";
    RESPONSE_CONTENT_TYPE_ADDED = "response-content-type-added", Info, "a response media type was added";
    RESPONSE_HEADER_REMOVED = "response-header-removed", Breaking, "a required response header was removed";
    RESPONSE_OPTIONAL_HEADER_REMOVED = "response-optional-header-removed", Warning, "an optional response header was removed";
    RESPONSE_HEADER_BECAME_OPTIONAL = "response-header-became-optional", Breaking, "a required response header became optional";
    REQUEST_PROPERTY_ADDED_REQUIRED = "request-property-added-required", Breaking, "a required request property was added";
    REQUEST_PROPERTY_BECAME_REQUIRED = "request-property-became-required", Breaking, "an optional request property became required";
    REQUEST_PROPERTY_ADDED_OPTIONAL = "request-property-added-optional", Info, "an optional request property was added";
    REQUEST_PROPERTY_REMOVED = "request-property-removed", Warning, "a request property was removed; other properties are still allowed, so clients sending it are ignored";
    REQUEST_PROPERTY_REMOVED_CLOSED = "request-property-removed-closed", Breaking, "a request property was removed from an object that allows no other properties: requests sending it now fail";
    REQUEST_ADDITIONAL_PROPERTIES_CLOSED = "request-additional-properties-closed", Breaking, "a request object no longer allows additional properties";
    REQUEST_TYPE_NARROWED = "request-type-narrowed", Breaking, "a request value accepts fewer types (e.g. number to integer)";
    REQUEST_TYPE_CHANGED = "request-type-changed", Breaking, "a request value's type changed to an unrelated one";
    REQUEST_NULLABLE_REMOVED = "request-nullable-removed", Breaking, "a request value no longer accepts null";
    REQUEST_ENUM_NARROWED = "request-enum-narrowed", Breaking, "a request enum lost values (or an enum was added)";
    REQUEST_FORMAT_CHANGED = "request-format-changed", Breaking, "a request value's format was added or changed to a narrower one";
    REQUEST_CONSTRAINT_TIGHTENED = "request-constraint-tightened", Breaking, "a request constraint tightened (maxLength lowered, minimum raised, pattern added, ...)";
    REQUEST_VARIANT_REMOVED = "request-variant-removed", Breaking, "a oneOf/anyOf request variant was removed";
    RESPONSE_PROPERTY_REMOVED = "response-property-removed", Breaking, "a response property was removed";
    RESPONSE_PROPERTY_BECAME_OPTIONAL = "response-property-became-optional", Breaking, "a required response property became optional";
    RESPONSE_PROPERTY_ADDED = "response-property-added", Info, "a response property was added";
    RESPONSE_TYPE_CHANGED = "response-type-changed", Breaking, "a response value may now have a type it could not have before";
    RESPONSE_NULLABLE_ADDED = "response-nullable-added", Breaking, "a response value may now be null";
    RESPONSE_ENUM_WIDENED = "response-enum-widened", Warning, "a response enum gained values (clients with exhaustive matches may fail)";
    RESPONSE_FORMAT_CHANGED = "response-format-changed", Breaking, "a response value's format was removed or changed to a wider one";
    RESPONSE_CONSTRAINT_LOOSENED = "response-constraint-loosened", Warning, "a response constraint loosened (maxLength raised, pattern removed, ...)";
    RESPONSE_VARIANT_ADDED = "response-variant-added", Warning, "a oneOf/anyOf response variant was added";
    SCHEMA_CHANGED_UNANALYSED = "schema-changed-unanalysed", Warning, "a schema changed in a way the diff does not analyse (review by hand)";
}

/// The rule with this id, if there is one.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}
