//! The 15 critical-infrastructure sectors (重要インフラ分野, REQUIREMENTS PP-16; seed 003
//! footnote 4), with their Japanese and English names.

use crate::named::named_enum;

named_enum! {
    /// A critical-infrastructure sector.
    pub enum Sector ("sector") {
        Telecom => "telecom", "情報通信", "Information and communications";
        Finance => "finance", "金融", "Finance";
        Aviation => "aviation", "航空", "Aviation";
        Airports => "airports", "空港", "Airports";
        Railways => "railways", "鉄道", "Railways";
        Electricity => "electricity", "電力", "Electricity";
        Gas => "gas", "ガス", "Gas";
        Government => "government", "政府・行政サービス", "Government and administrative services";
        Medical => "medical", "医療", "Medical";
        Water => "water", "水道", "Water";
        Logistics => "logistics", "物流", "Logistics";
        Chemicals => "chemicals", "化学", "Chemicals";
        Credit => "credit", "クレジット", "Credit";
        Petroleum => "petroleum", "石油", "Petroleum";
        Ports => "ports", "港湾", "Ports";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn fifteen_distinct_sectors_round_trip_by_slug_and_serde() {
        assert_eq!(Sector::ALL.len(), 15);
        let slugs: HashSet<_> = Sector::ALL.iter().map(|s| s.slug()).collect();
        let ja: HashSet<_> = Sector::ALL.iter().map(|s| s.name_ja()).collect();
        assert_eq!((slugs.len(), ja.len()), (15, 15));
        for &s in Sector::ALL {
            assert_eq!(s.slug().parse::<Sector>(), Ok(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.slug()));
        }
        let err = "energy".parse::<Sector>().unwrap_err().to_string();
        assert!(
            err.contains("unknown sector \"energy\"") && err.contains("electricity"),
            "{err}"
        );
    }
}
