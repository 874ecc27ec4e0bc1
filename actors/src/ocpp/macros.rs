//! Declaration macros: each OCPP enum, structure and payload is declared once and gets its
//! [`Wire`](super::wire::Wire) validation and serde implementations from the same declaration.
//!
//! The expansions name `Wire`, `Path`, `CallError` and a few helper functions unqualified (a
//! `macro_rules!` macro cannot name this module in a way that works both here and in a crate
//! where it is nested), so a file that uses them imports `wire::support::*`.

/// Implements serde's `Serialize` and `Deserialize` through the type's `Wire` impl.
macro_rules! serde_via_wire {
    ($name:ident) => {
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                ::serde::Serialize::serialize(&Wire::to_wire(self), serializer)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <::serde_json::Value as ::serde::Deserialize>::deserialize(deserializer)?;
                <Self as Wire>::from_wire(&value, &Path::Root).map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// Declares a string enum from `Variant = "WireValue"` pairs.
///
/// Generates the enum (each variant documented with its wire value), `VALUES`, `as_str`,
/// `from_wire_str`, `Display`, `Wire` (not a string → TypeConstraintViolation, unknown value →
/// PropertyConstraintViolation) and serde.
macro_rules! ocpp_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[doc = concat!("Wire value `", $wire, "`.")]
                $variant,
            )+
        }

        impl $name {
            /// Every wire value, in the order of the OCPP 1.6 JSON schema.
            pub const VALUES: &'static [&'static str] = &[$($wire),+];

            /// The value as written on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }

            /// Looks up a wire value (case-sensitive, like the schemas' `enum` lists).
            pub fn from_wire_str(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Wire for $name {
            fn from_wire(value: &::serde_json::Value, path: &Path<'_>) -> Result<Self, CallError> {
                let s = expect_str(value, path)?;
                Self::from_wire_str(s).ok_or_else(|| bad_enum(path, s, Self::VALUES))
            }

            fn read_direct<'de, D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(StrVisitor::new(stringify!($name), Self::from_wire_str))
            }

            fn to_wire(&self) -> ::serde_json::Value {
                ::serde_json::Value::from(self.as_str())
            }
        }

        serde_via_wire!($name);
    };
}

/// Declares an OCPP structure or payload: `"jsonName" rust_name: Type [check, …],`.
///
/// `Option<T>` fields are optional, all others required. The optional `[check, …]` list names
/// functions `fn(&Type, &Path) -> Result<(), CallError>` run after the field was read (spec
/// constraints the JSON types cannot express, such as `connectorId > 0`). Unknown JSON fields are
/// ignored. Generates the struct, `Wire` and serde.
macro_rules! ocpp_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $json:literal $field:ident : $ty:ty $([$($check:path),+ $(,)?])?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[doc = concat!("\n\nJSON field `", $json, "`.")]
                pub $field: $ty,
            )*
        }

        impl Wire for $name {
            #[allow(unused_variables)]
            fn from_wire(value: &::serde_json::Value, path: &Path<'_>) -> Result<Self, CallError> {
                let object = expect_object(value, path)?;
                $(
                    let $field: $ty = read_field(object, $json, path)?;
                    $($( $check(&$field, &path.field($json))?; )+)?
                )*
                Ok(Self { $($field),* })
            }

            fn read_direct<'de, D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct DirectVisitor;

                impl<'de> ::serde::de::Visitor<'de> for DirectVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " object"))
                    }

                    // Each field as `read_field` reads it, except that a duplicate key is refused
                    // (the usual parse keeps the last) and the errors say nothing (see `Wire`).
                    #[allow(unused_mut, unused_variables, unused_imports, clippy::match_single_binding)]
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        use ::serde::de::Error as _;
                        $( let mut $field: Option<$ty> = None; )*
                        while let Some(key) = map.next_key::<DirectKey<'de>>()? {
                            match key.as_str() {
                                $(
                                    $json => {
                                        if $field.is_some() {
                                            return Err(A::Error::custom(concat!("duplicate field ", $json)));
                                        }
                                        $field = Some(map.next_value_seed(DirectSeed::<$ty>(::std::marker::PhantomData))?);
                                    }
                                )*
                                _ => {
                                    map.next_value::<::serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        let path = Path::Root;
                        $(
                            let $field: $ty = match $field {
                                Some(value) => value,
                                None => <$ty as Wire>::when_absent(&path).map_err(A::Error::custom)?,
                            };
                            $($( $check(&$field, &path).map_err(A::Error::custom)?; )+)?
                        )*
                        Ok($name { $($field),* })
                    }
                }

                deserializer.deserialize_map(DirectVisitor)
            }

            fn to_wire(&self) -> ::serde_json::Value {
                #[allow(unused_mut)]
                let mut map = ::serde_json::Map::new();
                $(
                    if !Wire::is_absent(&self.$field) {
                        map.insert($json.to_owned(), Wire::to_wire(&self.$field));
                    }
                )*
                ::serde_json::Value::Object(map)
            }
        }

        serde_via_wire!($name);
    };
}

/// Declares a dispatch enum over payload types, one variant per OCPP action named like it.
///
/// Generates the enum, `ACTIONS`, `action()`, `payload()`, `parse(action, payload)` (unknown
/// action → `NotImplemented`; an OCPP 1.6 action that belongs to the other direction →
/// `NotSupported`) and `From<Payload>` for each variant.
macro_rules! ocpp_dispatch {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($direction:literal) {
            $( $variant:ident($ty:ty) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $(
                #[doc = concat!("`", stringify!($variant), "` ", $direction, ".")]
                $variant($ty),
            )+
        }

        impl $name {
            /// The action names this enum covers.
            pub const ACTIONS: &'static [&'static str] = &[$(stringify!($variant)),+];

            /// The OCPP action name, e.g. `"BootNotification"`.
            pub fn action(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant),)+
                }
            }

            /// The payload as JSON, ready for a frame.
            pub fn payload(&self) -> ::serde_json::Value {
                match self {
                    $(Self::$variant(p) => Wire::to_wire(p),)+
                }
            }

            /// Validates `payload` as the payload of `action` (the case-sensitive action name).
            ///
            /// An action this enum does not cover is `NotSupported` if it is another OCPP 1.6
            /// action (recognised, but not accepted in this direction) and `NotImplemented`
            /// otherwise (not known), per OCPP-J 1.6 table 7.
            pub fn parse(action: &str, payload: &::serde_json::Value) -> Result<Self, CallError> {
                $(
                    if action == stringify!($variant) {
                        return <$ty as Wire>::from_wire(payload, &Path::Root).map(Self::$variant);
                    }
                )+
                Err(unknown_action(action, $direction))
            }

            /// Reads the payload of `action` straight from JSON being parsed (see
            /// [`Wire::read_direct`]); any failure is a bare error.
            pub fn read_direct<'de, D: ::serde::Deserializer<'de>>(action: &str, deserializer: D) -> Result<Self, D::Error> {
                $(
                    if action == stringify!($variant) {
                        return <$ty as Wire>::read_direct(deserializer).map(Self::$variant);
                    }
                )+
                Err(::serde::de::Error::custom("unknown action"))
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(payload: $ty) -> Self {
                    Self::$variant(payload)
                }
            }
        )+
    };
}
