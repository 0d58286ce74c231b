//! Drop and refusal reasons: fieldless enums whose every variant has a counter and a row in the
//! management API's `drops`.

/// What `drops` needs of a reason: its name and, through `Display`, what it means.
pub trait Reason: Copy + std::fmt::Display {
    /// The variant's name (`NotRegistered`).
    fn name(self) -> &'static str;
}

/// Declares a fieldless enum with `ALL` (every variant, in declaration order) and `index()`
/// (the variant's place in `ALL`): built from the one list, a counter array
/// `[u64; ALL.len()]` indexed by `index()` has a slot for every variant there is.
#[macro_export]
macro_rules! reasons {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident,)+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];

            pub fn index(self) -> usize {
                // Fieldless, no explicit discriminants: 0, 1, … in declaration order, as ALL.
                self as usize
            }
        }

        impl $crate::reasons::Reason for $name {
            fn name(self) -> &'static str {
                [$(stringify!($variant)),+][self.index()]
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::reasons! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Why {
            TooShort,
            /// Documented variants keep their attributes.
            Auth,
            NotOurs,
        }
    }

    impl std::fmt::Display for Why {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    #[test]
    fn every_variant_is_listed_once_at_its_index_with_its_name() {
        use super::Reason;
        assert_eq!(Why::ALL, [Why::TooShort, Why::Auth, Why::NotOurs]);
        for (i, r) in Why::ALL.into_iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        assert_eq!(Why::NotOurs.name(), "NotOurs");
    }
}
