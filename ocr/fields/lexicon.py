"""Words and patterns the receipt rules recognise, in one place so they can be read and extended.

Built from the layout of Malaysian / English receipts (SROIE training receipts only) and common
English receipt wording; every pattern is upper-case and matched on upper-cased text.
"""

from __future__ import annotations

import re

# --- company -----------------------------------------------------------------------------------
#: legal-form endings: a line ending so is almost surely the company name
COMPANY_LEGAL = re.compile(
    r"(\bSDN\.?\s*BHD\b\.?|\bS\s?/\s?B\b|\bBHD\b\.?|\bBERHAD\b|\bPLT\b|\bLTD\b\.?|\bLIMITED\b|\bINC\b\.?"
    r"|\bLLC\b|\bSB\b|\bCORP(ORATION)?\b|\bGMBH\b|\bPTE\b|\bCO\.,?\s*LTD|有限公司)")
#: legal forms as a recogniser misreads them (SDN 3HD, SDN EHD, S/8, 5/B): the printed form is certain
COMPANY_LEGAL_FUZZY = (
    (re.compile(r"\b[S5][DO0][NH]\s?\.?\s*[B8E3日D]\s?[HI1]\s?[DO0Z]\b\.?"), "SDN BHD"),
    (re.compile(r"(?<![A-Z0-9])[S5]\s?/\s?[B8D](?![A-Z0-9])"), "S/B"),
)
#: trade words that name businesses; weaker evidence than a legal form
COMPANY_TRADE = re.compile(
    r"\b(ENTERPRISES?|TRADING|TRADERS?|RESTAURANTS?|RESTORAN|HARDWARE|STATIONERY|STATIONER|MART|MARKET|SUPERMARKET"
    r"|HYPERMARKET|CAFE|KOPITIAM|BAKERY|PHARMACY|KEDAI|SYARIKAT|PERNIAGAAN|CENTRE|CENTER|STORES?|BOOKSTORES?"
    r"|KITCHEN|FOOD|HOLDINGS|GALLERY|PETRO|PETROL|TRADING|MACHINERY|ELECTRICAL|AUTO|SERVICES?|MINI\s?MARKET"
    r"|INDUSTRIES|MOTOR|FURNITURE|TEXTILE|BOOKS?|CONFECTIONERY|SNACKS?|COMPANY|HOUSE|SHOP|AREA|GROUP|BISTRO"
    r"|BAR|GRILL|PIZZA|BURGER|NOODLES?|TEA|COFFEE|TOBACCO|DIY|SPEED\s?MART|HOTEL|CLINIC|OPTICAL)\b")
#: words that start a company line's continuation: the name's distinctive part is on the line above
COMPANY_CONTINUATION = re.compile(
    r"^\(?\s*(SDN|BHD|S/B|CO\.|CO\b|CP\.|\(M\)|RESTAURANTS?|RESTORAN|ENTERPRISES?|TRADING|HARDWARE|STATIONERY|PLT"
    r"|LTD|LIMITED|INC)\b|^\([A-Z ]+\)\s*(SDN|BHD)")
#: text to cut from a company line: registration numbers and owner prefixes
COMPANY_STRIP = (
    re.compile(r"\s*[\(\[]?\s*(CO\.?\s*|COMPANY\s*|ROC\s*|REG\.?\s*)*(NO\.?|REG\.?)?\s*[:.]?\s*\d{4,}\s*-?\s*[A-Z]\s*[\)\]]?\s*$"),
    re.compile(r"\s*\(\s*\d{3,}[\dA-Z-]*\s*\)\s*$"),
    re.compile(r"^(DIMILIKI|OWNED BY|OPERATED BY)\s*(OLEH)?\s*:?\s*"),
)

# --- lines that are neither company nor address ------------------------------------------------
NOISE_LINE = re.compile(
    r"\b(TEL|TELEPHONE|PHONE|FAX|H/P|HP|MOBILE|EMAIL|E-MAIL|WEBSITE|WWW|GST|SST|TAX|INVOICE|RECEIPT|BILL|CASHIER"
    r"|REG\.?|REGISTRATION|ROC|CO\.?\s*NO|COMPANY\s*NO|BUSINESS\s*NO|DATE|TIME|TABLE|COUNTER|WELCOME|THANK"
    r"|DOCUMENT|SLIP|COPY|MEMBER|OPENING|HOURS|ORDER|CHIT|NOT A|FORMERLY|LICENSEE)\b|@|\.COM\b|HTTP|\bGST|\bREG\s?NO"
    r"|:\s*\d{3}")
REGISTRATION_ONLY = re.compile(r"^[\(<\[]?\s*(\d{4,}\s*-?\s*[A-Z]|\d{6,})\s*[\)>\]]?[.,]?$")
#: a company-registration line ("CO. REG : 860671-D", "(COMPANY NO. 113825-W)"): never part of an address
REGISTRATION = re.compile(r"\bREG\.?\s?NO|\b(CO|COMPANY|ROC|REG|BUSINESS|BRN|SSM)\b\.?\s*[-:]?\s*(REG\b\.?|REGISTRATION)?\s*(NO\b\.?)?\s*[:.]?\s*\d{3,}"
                          r"|\bCO\.?\s*-?\s*REG|\bCOMPANY\s*(NO|REG)|\(\s*\d{4,}\s*-?\s*[A-Z]\s*\)")

# --- address -----------------------------------------------------------------------------------
ADDRESS_WORD = re.compile(
    r"\b(JALAN|JLN|JL|LORONG|LRG|PERSIARAN|LEBUH|LEBUHRAYA|TAMAN|TMN|BANDAR|KAWASAN|SEKSYEN|SECTION|KAMPUNG|KG"
    r"|BATU|LOT|NO|BLOK|BLK|BLOCK|LEVEL|LEVEL|TINGKAT|ARAS|FLOOR|FLR|GRD|UNIT|PLAZA|MALL|SQUARE|CITY|JAYA|PARK"
    r"|INDUSTRI|PERINDUSTRIAN|PUSAT|STREET|ST|ROAD|RD|AVENUE|AVE|BOULEVARD|BLVD|LANE|DRIVE|SUITE|OFF|SIMPANG"
    r"|SELANGOR|JOHOR|BAHRU|KUALA|LUMPUR|PERAK|PAHANG|KEDAH|MELAKA|MALACCA|PENANG|PINANG|SABAH|SARAWAK|NEGERI"
    r"|SEMBILAN|KELANTAN|TERENGGANU|PERLIS|PUTRAJAYA|LABUAN|MALAYSIA|DARUL|EHSAN|TAKZIM|W\.?P|KL|PETALING|SHAH"
    r"|ALAM|KLANG|CHERAS|PUCHONG|KAJANG|SUBANG|AMPANG|SETAPAK|KEPONG|SERI|SRI|DAMANSARA|USJ|SS\d+)\b")
POSTCODE = re.compile(r"(?<![\d-])\d{5}(?![\d-])")
#: lines that end an address block once it has begun
ADDRESS_STOP = re.compile(
    r"\b(TEL|TELEPHONE|PHONE|FAX|H/P|HP|MOBILE|EMAIL|E-MAIL|SST|REG|ROC|INVOICE|RECEIPT|CASHIER|DATE|TIME"
    r"|WWW|TAX|SHOPPING HOURS|OPENING|BILL|TABLE|COUNTER|SLIP|ORDER|CHIT|THANK|WELCOME)\b|\bGST|\bTEL\s?:|\bREG\.?\s?NO"
    r"|TAX\s*INVOICE|\S@\S|\.COM"
    r"|\d{2,4}-\d{3,4}\s?\d{3,4}|^\s*\(?0\d{1,3}\)?\s?-\s?\d{0,4}\s*$")
#: an address's first line names a street-level place or opens with a number ("12, JALAN …", "A-G-06, …")
ADDRESS_START = re.compile(
    r"^\s*(NO\b|LOT\b|UNIT\b|LEVEL\b|BLOK\b|BLK\b|BLOCK\b|SUITE\b|G-|GROUND|\d|[A-Z]{1,2}\s?-{1,2}\s?\d"
    r"|[A-Z]{1,3}\d{2,}|JALAN|JLN)"
    r"|\b(JALAN|JLN|JL|LORONG|LRG|PERSIARAN|TAMAN|TMN|KAWASAN|FLOOR|FLR|WISMA|BANGUNAN|MENARA|KOMPLEKS|STREET"
    r"|ROAD|AVENUE)\b")

# --- date --------------------------------------------------------------------------------------
DATE_KEYWORD = re.compile(r"\b(DATE|TARIKH|DATED|DT)\b|日期")
DATE_AVOID = re.compile(r"\b(EXP|EXPIRY|EXPIRES|VALID|DUE|BEST BEFORE|BIRTH|PRINTED|FROM|UNTIL|TILL)\b")

# --- total -------------------------------------------------------------------------------------
TOTAL_KEYWORD = re.compile(r"TOTAL|TOTAI|T0TAL|AMOUNT\s*DUE|AMT\s*DUE|BALANCE\s*DUE|JUMLAH|NETT|NET\s*AMOUNT|GRAND"
                           r"|^\s*DUE\b|PAID\s*INCL")
TOTAL_EXCLUDE = re.compile(
    r"SUB\s*-?\s*TOTAL|TOTAL\s*(QTY|QUANTITY|QUANTUTY|ITEM|ITEMS|NO\.?\s*OF|PCS|UNITS?|SAVINGS?|DISCOUNT|DISC|GST|TAX"
    r"|SST|VAT|POINTS?|WEIGHT|TIPS?)|(TAX|GST|SST|VAT)\b.*TOTAL|EXC[LI1]|EXCLUSIVE|EXCLUDING|\bEX\b|BEFORE|GROSS|ITEM\s*SOLD"
    r"|^\s*\(")
SUBTOTAL = re.compile(r"SUB\s*-?\s*TOTAL")
ROUNDING = re.compile(r"R[O0G]UND(ING)?\s*(ADJ|ADJUSTMENT)?|OUNDING|ADJ(USTMENT)?\b")
#: keyword classes that name the amount finally paid, strongest first
TOTAL_FINAL = (
    ("rounded total", re.compile(r"ROUND(ED|ING)?\s*TOTAL|TOTAL\s*ROUND|AFTER\s*(ADJ|ROUND)|ROUNDED")),
    ("net/grand total", re.compile(r"NETT?\s*TOTAL|GRAND\s*TOTAL|TOTAL\s*PAYA|AMOUNT\s*DUE|AMT\s*DUE|BALANCE\s*DUE|^\s*DUE\b")),
    ("total incl. tax", re.compile(r"INCL|INCLUSIVE|INCLUDING|INCLUDED")),
    ("total amount", re.compile(r"TOTAL\s*(AMOUNT|AMT|SALES|\(?RM\)?|\(?\$\)?|:|$)|JUMLAH")),
    ("total", re.compile(r"TOTAL|TOTAI|T0TAL")),
)
#: lines that start a tax summary table, whose "TOTAL" rows are not the bill's total
TAX_SUMMARY = re.compile(r"GST\s*SUMMARY|TAX\s*SUMMARY|SUMMARY|TAX\s*CODE|GST\s*CODE|\(RM\)\s*TAX|AMOUNT\s*\(RM\)\s*(GST|TAX)")
CASH_KEYWORD = re.compile(r"\b(CASH|TENDER(ED)?|PAID|PAY|PAYMENT|RECEIVED|CREDIT|VISA|MASTER|CARD)\b")
CHANGE_KEYWORD = re.compile(r"\bCHANGE\b|BAKI")

#: words of Malaysian / English addresses; a misread one ("SETANGOR", "LUMP∪R") is put back
ADDRESS_LEXICON = frozenset("""
JALAN TAMAN KAWASAN PERINDUSTRIAN PERINDUSTRIAL INDUSTRIAL BANDAR LORONG PERSIARAN LEBUHRAYA SEKSYEN SECTION
KAMPUNG BANGUNAN WISMA MENARA KOMPLEKS PLAZA SQUARE CENTRE CENTER SHOPPING GROUND FLOOR LEVEL BLOCK UNIT
SELANGOR JOHOR KEDAH KELANTAN MELAKA NEGERI SEMBILAN PAHANG PERAK PERLIS PENANG PULAU PINANG SABAH SARAWAK
TERENGGANU LABUAN PUTRAJAYA KUALA LUMPUR MALAYSIA DARUL EHSAN TAKZIM PETALING DAMANSARA SUBANG SHAH ALAM
KLANG CHERAS PUCHONG KAJANG AMPANG SETAPAK KEPONG SERDANG KEMBANGAN BALAKONG SEMENYIH RAWANG SELAYANG
BAHRU MASAI SKUDAI PERMAS UTARA SELATAN TIMUR BARAT TENGAH INDAH UTAMA PUSAT PERDANA MUTIARA JAYA BARU
BUKIT BATU SUNGAI KOTA DESA MAHKOTA MEGAH SENTOSA KINRARA SRI SERI SETIA GOMBAK BANGSAR BANGI DENGKIL
""".split())
