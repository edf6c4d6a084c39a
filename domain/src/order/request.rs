//! Turning the order a customer wrote into one the domain accepts.
//!
//! [`ValidatedOrder::parse`] is the only way to get a [`ValidatedOrder`], so an
//! order aggregate never sees a negative quantity or a price with three decimals.
//! The HTTP API runs the same parse to answer 422 before any saga starts.

use serde::{Deserialize, Serialize};

use crate::limits::{self, MAX_ITEMS_PER_ORDER, MAX_ITEM_QUANTITY, MAX_NAME_CHARS, MAX_ORDER_TOTAL};
use crate::messages::{OrderDetails, OrderItem};
use crate::money::{AmountError, Cents};

/// The limits an order must keep, set by configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRules {
    pub max_delivery_fee: Cents,
    pub currency: String,
}

/// Why an order as written cannot be placed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderRejection {
    #[error("an order needs at least one food item")]
    NoItems,
    #[error("an order has at most {MAX_ITEMS_PER_ORDER} food items, not {0}")]
    TooManyItems(usize),
    #[error("food item {index}'s name is longer than {MAX_NAME_CHARS} characters")]
    NameTooLong { index: usize },
    #[error("food item {index} ({name}) has quantity {quantity}; at most {MAX_ITEM_QUANTITY} of an item")]
    QuantityTooLarge { index: usize, name: String, quantity: i64 },
    #[error("the {field} is longer than {MAX_NAME_CHARS} characters")]
    LocationTooLong { field: &'static str },
    #[error("food item {index} has no name")]
    ItemWithoutName { index: usize },
    #[error("food item {index} ({name}) has quantity {quantity}; it must be at least 1")]
    QuantityNotPositive { index: usize, name: String, quantity: i64 },
    #[error("food item {index} ({name}) has price {price}: {reason}")]
    InvalidPrice {
        index: usize,
        name: String,
        price: String,
        reason: String,
    },
    #[error("the delivery fee {fee}: {reason}")]
    InvalidDeliveryFee { fee: String, reason: String },
    #[error("the delivery fee {fee} is above the limit of {limit}")]
    DeliveryFeeAboveLimit { fee: Cents, limit: Cents },
    #[error("the delivery location is empty")]
    NoDeliveryLocation,
    #[error("the order total is above the limit of {MAX_ORDER_TOTAL}")]
    TotalTooLarge,
    #[error("the order costs nothing; there is nothing to pay for")]
    NothingToPay,
}

/// An order that keeps every rule, with its amounts in cents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatedOrder {
    pub items: Vec<OrderItem>,
    pub store_location: Option<String>,
    pub delivery_location: String,
    pub food_fee: Cents,
    pub delivery_fee: Cents,
    pub total: Cents,
    pub currency: String,
}

impl ValidatedOrder {
    pub fn parse(details: &OrderDetails, rules: &OrderRules) -> Result<ValidatedOrder, OrderRejection> {
        if details.food_items.is_empty() {
            return Err(OrderRejection::NoItems);
        }
        if details.food_items.len() > MAX_ITEMS_PER_ORDER {
            return Err(OrderRejection::TooManyItems(details.food_items.len()));
        }
        for (field, location) in [
            ("store location", details.store_location.as_deref()),
            ("delivery location", Some(details.delivery_location.as_str())),
        ] {
            if location.is_some_and(|location| !limits::within(location, MAX_NAME_CHARS)) {
                return Err(OrderRejection::LocationTooLong { field });
            }
        }
        let mut items = Vec::with_capacity(details.food_items.len());
        let mut food_fee = Cents::ZERO;
        for (index, item) in details.food_items.iter().enumerate() {
            let name = item.name.trim();
            if name.is_empty() {
                return Err(OrderRejection::ItemWithoutName { index });
            }
            if !limits::within(name, MAX_NAME_CHARS) {
                return Err(OrderRejection::NameTooLong { index });
            }
            if item.quantity < 1 {
                return Err(OrderRejection::QuantityNotPositive {
                    index,
                    name: name.to_string(),
                    quantity: item.quantity,
                });
            }
            if item.quantity > MAX_ITEM_QUANTITY {
                return Err(OrderRejection::QuantityTooLarge {
                    index,
                    name: name.to_string(),
                    quantity: item.quantity,
                });
            }
            let invalid_price = |reason: String| OrderRejection::InvalidPrice {
                index,
                name: name.to_string(),
                price: item.price.as_str().to_string(),
                reason,
            };
            let price = item.price.to_cents().map_err(|e| invalid_price(e.to_string()))?;
            if price.is_negative() {
                return Err(invalid_price("it must be at least 0".to_string()));
            }
            let line_total = price.checked_mul(item.quantity).ok_or(OrderRejection::TotalTooLarge)?;
            food_fee = food_fee.checked_add(line_total).ok_or(OrderRejection::TotalTooLarge)?;
            items.push(OrderItem {
                name: name.to_string(),
                price_cents: price,
                quantity: item.quantity,
            });
        }
        let delivery_fee = match &details.delivery_fee {
            None => Cents::ZERO,
            Some(fee) => {
                let invalid_fee = |error: AmountError| OrderRejection::InvalidDeliveryFee {
                    fee: fee.as_str().to_string(),
                    reason: error.to_string(),
                };
                let cents = fee.to_cents().map_err(invalid_fee)?;
                if cents.is_negative() {
                    return Err(OrderRejection::InvalidDeliveryFee {
                        fee: fee.as_str().to_string(),
                        reason: "it must be at least 0".to_string(),
                    });
                }
                if cents > rules.max_delivery_fee {
                    return Err(OrderRejection::DeliveryFeeAboveLimit {
                        fee: cents,
                        limit: rules.max_delivery_fee,
                    });
                }
                cents
            }
        };
        let delivery_location = details.delivery_location.trim();
        if delivery_location.is_empty() {
            return Err(OrderRejection::NoDeliveryLocation);
        }
        let total = food_fee
            .checked_add(delivery_fee)
            .filter(|total| *total <= MAX_ORDER_TOTAL)
            .ok_or(OrderRejection::TotalTooLarge)?;
        if total == Cents::ZERO {
            return Err(OrderRejection::NothingToPay);
        }
        Ok(ValidatedOrder {
            items,
            store_location: details.store_location.clone().filter(|s| !s.trim().is_empty()),
            delivery_location: delivery_location.to_string(),
            food_fee,
            delivery_fee,
            total,
            currency: rules.currency.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    fn rules() -> OrderRules {
        OrderRules {
            max_delivery_fee: Cents(2000),
            currency: "SGD".to_string(),
        }
    }

    fn details(value: serde_json::Value) -> OrderDetails {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn food_fee_is_the_sum_of_price_times_quantity_and_total_adds_delivery() {
        let order = ValidatedOrder::parse(
            &details(json!({
                "foodItems": [
                    {"name": "Burger", "price": 12.99, "quantity": 2},
                    {"name": "Fries", "price": "0.10", "quantity": 3}
                ],
                "storeLocation": "Koufu",
                "deliveryLocation": "North Campus",
                "deliveryFee": 3.5
            })),
            &rules(),
        )
        .unwrap();
        assert_eq!(order.food_fee, Cents(2628));
        assert_eq!(order.delivery_fee, Cents(350));
        assert_eq!(order.total, Cents(2978));
    }

    #[test]
    fn store_location_and_delivery_fee_are_optional() {
        let order = ValidatedOrder::parse(
            &details(json!({
                "foodItems": [{"name": "Burger", "price": 12.99, "quantity": 1}],
                "deliveryLocation": "North Campus"
            })),
            &rules(),
        )
        .unwrap();
        assert_eq!(order.delivery_fee, Cents::ZERO);
        assert_eq!(order.store_location, None);
        assert_eq!(order.total, Cents(1299));
    }

    #[rstest]
    #[case(json!({"foodItems": [], "deliveryLocation": "A"}), "at least one food item")]
    #[case(json!({"foodItems": [{"name": "B", "price": 1, "quantity": -1}], "deliveryLocation": "A"}), "quantity -1")]
    #[case(json!({"foodItems": [{"name": "B", "price": 1, "quantity": 0}], "deliveryLocation": "A"}), "quantity 0")]
    #[case(json!({"foodItems": [{"name": "B", "price": -1, "quantity": 1}], "deliveryLocation": "A"}), "at least 0")]
    #[case(json!({"foodItems": [{"name": "B", "price": 1.999, "quantity": 1}], "deliveryLocation": "A"}), "more than two decimals")]
    #[case(json!({"foodItems": [{"name": "B", "price": 1, "quantity": 1}], "deliveryLocation": "A", "deliveryFee": -2}), "delivery fee -2")]
    #[case(json!({"foodItems": [{"name": "B", "price": 1, "quantity": 1}], "deliveryLocation": "A", "deliveryFee": 25}), "above the limit")]
    #[case(json!({"foodItems": [{"name": "B", "price": 1, "quantity": 1}], "deliveryLocation": " "}), "delivery location is empty")]
    #[case(json!({"foodItems": [{"name": "", "price": 1, "quantity": 1}], "deliveryLocation": "A"}), "has no name")]
    #[case(json!({"foodItems": [{"name": "Water", "price": 0, "quantity": 1}], "deliveryLocation": "A"}), "costs nothing")]
    fn an_order_that_breaks_a_rule_is_rejected_with_the_reason(
        #[case] value: serde_json::Value,
        #[case] expected: &str,
    ) {
        let error = ValidatedOrder::parse(&details(value), &rules()).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }

    fn item(name: &str, price: &str, quantity: i64) -> serde_json::Value {
        json!({"name": name, "price": price, "quantity": quantity})
    }

    #[rstest]
    #[case(json!({"foodItems": vec![item("B", "1", 1); MAX_ITEMS_PER_ORDER + 1], "deliveryLocation": "A"}), "at most 50 food items")]
    #[case(json!({"foodItems": [item(&"n".repeat(MAX_NAME_CHARS + 1), "1", 1)], "deliveryLocation": "A"}), "name is longer than")]
    #[case(json!({"foodItems": [item("B", "1", MAX_ITEM_QUANTITY + 1)], "deliveryLocation": "A"}), "at most 100 of an item")]
    #[case(json!({"foodItems": [item("B", "1", 1)], "deliveryLocation": "d".repeat(MAX_NAME_CHARS + 1)}), "delivery location is longer")]
    #[case(json!({"foodItems": [item("B", "1", 1)], "deliveryLocation": "A", "storeLocation": "s".repeat(MAX_NAME_CHARS + 1)}), "store location is longer")]
    #[case(json!({"foodItems": [item("B", "10000.01", 1)], "deliveryLocation": "A"}), "above the limit of 10000.00")]
    #[case(json!({"foodItems": [item("B", "0e2147483647", 1)], "deliveryLocation": "A"}), "costs nothing")]
    fn an_order_past_a_limit_is_rejected_with_the_limit(#[case] value: serde_json::Value, #[case] expected: &str) {
        let error = ValidatedOrder::parse(&details(value), &rules()).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }

    #[test]
    fn an_order_at_every_limit_is_taken() {
        let name = "n".repeat(MAX_NAME_CHARS);
        let value = json!({
            "foodItems": vec![item(&name, "1", MAX_ITEM_QUANTITY); MAX_ITEMS_PER_ORDER],
            "deliveryLocation": "d".repeat(MAX_NAME_CHARS),
        });
        let order = ValidatedOrder::parse(&details(value), &rules()).unwrap();
        assert_eq!(order.total, Cents(100 * 100 * 50));
    }
}
